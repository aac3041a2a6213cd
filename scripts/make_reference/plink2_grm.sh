#!/usr/bin/env bash
# Makes the plink2 GRM references checked by tests/test_grm.py, on tests/data/sim_small
# (written by plink2_freq.sh).  Needs plink2 (Debian: apt-get install plink2).
#
# Definition matched: GCTA's standardized GRM with pairwise missing-data normalisation (each
# pair averaged over the variants called in both; the diagonal by the same formula), which is
# what plink2 --make-rel / --make-grm-bin compute and our `grm --missing gcta` default.
# Frequencies from every sample (--nonfounders), variants with MAF >= 0.01 and missing rate
# <= 0.05 (our defaults).
#   sim_small.plink2.rel.bin/.rel.id   all 300 samples, lower triangle, float32 (bin4)
#   sim_small.keep.plink2.grm.*        the 100 samples of sim_small.keep, GCTA binary format
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--bfile "$out/sim_small" --nonfounders --maf 0.01 --geno 0.05 --threads 1)
plink2 "${common[@]}" --make-rel triangle bin4 --out "$tmp/all" > /dev/null
plink2 "${common[@]}" --keep "$out/sim_small.keep" --make-grm-bin --out "$tmp/keep" > /dev/null
cp "$tmp/all.rel.bin" "$out/sim_small.plink2.rel.bin"
cp "$tmp/all.rel.id" "$out/sim_small.plink2.rel.id"
for ext in grm.bin grm.N.bin grm.id; do cp "$tmp/keep.$ext" "$out/sim_small.keep.plink2.$ext"; done
plink2 --version > "$out/sim_small.plink2.version"
ls -l "$out"/sim_small*plink2*
