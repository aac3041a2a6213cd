#!/usr/bin/env bash
# Makes the plink2 PCA references checked by tests/test_pca.py.
#
# Needs gwas-glmm installed (pip install -e .) and plink2 (Debian: apt-get install plink2).
# Writes tests/data/sim_pca.{bed,bim,fam}: our simulator, fixed seed, 600 samples x 3000
# variants from 3 populations (Fst 0.05, so the top 2 PCs carry structure) with a few families,
# and plink2's exact PCA of it (--pca 10; --pca approx needs more samples than it allows here).
# Matched definition: variants with MAF >= 0.01 and missing rate <= 0.05 (our defaults),
# frequencies from every sample (--nonfounders; plink2 uses founders only otherwise).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/data
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gwas-glmm simulate --out "$tmp/sim_pca" --n-samples 600 --n-variants 3000 --n-populations 3 --fst 0.05 \
    --family-fraction 0.2 --seed 17 --n-polygenic 100 > /dev/null 2>&1
cp "$tmp"/sim_pca.{bed,bim,fam} "$out"/
plink2 --bfile "$out/sim_pca" --nonfounders --maf 0.01 --geno 0.05 --pca 10 --threads 1 \
    --out "$tmp/pca" > /dev/null
cp "$tmp/pca.eigenvec" "$out/sim_pca.plink2.eigenvec"
cp "$tmp/pca.eigenval" "$out/sim_pca.plink2.eigenval"
plink2 --version > "$out/sim_pca.plink2.version"
ls -l "$out"/sim_pca*
