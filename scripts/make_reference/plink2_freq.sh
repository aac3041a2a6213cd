#!/usr/bin/env bash
# Makes the plink2 allele-frequency references checked by tests/test_stats.py.
#
# Needs gwas-glmm installed (pip install -e .) and plink2 (Debian: apt-get install plink2).
# Writes tests/data/sim_small.{bed,bim,fam} (our simulator, fixed seed) and plink2's --freq
# reports on it: all samples, and a --keep subset restricted to chromosomes 1-5.
# plink2 counts founders only unless --nonfounders is given; we count every sample.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/data
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gwas-glmm simulate --out "$tmp/sim_small" --n-samples 300 --n-variants 1000 --seed 2024 --n-polygenic 100
cp "$tmp"/sim_small.{bed,bim,fam} "$out"/
awk 'NR % 3 == 1 {print $1 "\t" $2}' "$out/sim_small.fam" > "$out/sim_small.keep"

plink2 --version > "$out/sim_small.plink2.version"
plink2 --bfile "$out/sim_small" --nonfounders --freq cols=chrom,pos,ref,alt,altfreq,nobs \
    --out "$tmp/all" > /dev/null
plink2 --bfile "$out/sim_small" --nonfounders --freq counts cols=chrom,pos,ref,alt,altfreq,nobs \
    --out "$tmp/all" > /dev/null
plink2 --bfile "$out/sim_small" --nonfounders --keep "$out/sim_small.keep" --chr 1-5 \
    --freq counts cols=chrom,pos,ref,alt,altfreq,nobs --out "$tmp/keep" > /dev/null
cp "$tmp/all.afreq" "$out/sim_small.plink2.afreq"
cp "$tmp/all.acount" "$out/sim_small.plink2.acount"
cp "$tmp/keep.acount" "$out/sim_small.keep.plink2.acount"
ls -l "$out"/sim_small*
