#!/usr/bin/env bash
# tests/data/bgen/: a tiny simulated cohort (120 samples x 400 variants, 2% missing calls) as
# .bed hard calls and .pgen dosages (gwas-glmm simulate --dosages), and BGEN files written from
# them by plink2 (REF first, so the second allele is the .bim's ALLELE1):
#   tiny_hard8.bgen   BGEN 1.2, 8-bit, zlib, from the .bed's hard calls (+ .sample)
#   tiny_v11.bgen     BGEN 1.1 (no sample-ID block), from the hard calls (+ .sample)
#   tiny_dos16.bgen   BGEN 1.3, 16-bit, from the .pgen's dosages (+ .sample)
#   tiny_p2hard.pgen  the .bed's hard calls as plink2 --make-pgen writes them (+ .pvar, .psam)
# plink2 --make-pgen of the dosage .pgen (pgenlib's writer) gives the same bytes: checked below.
# Used by tests/test_bgen.py.  Needs plink2 (apt-get install plink2).
set -euo pipefail
out="$(cd "$(dirname "$0")/../.." && pwd)/tests/data/bgen"
mkdir -p "$out"
gwas-glmm simulate --out "$out/tiny" --n-samples 120 --n-variants 400 --missing-rate 0.02 --dosages --seed 5
plink2 --bfile "$out/tiny" --export bgen-1.2 bits=8 ref-first --out "$out/tiny_hard8"
plink2 --bfile "$out/tiny" --export bgen-1.1 ref-first --out "$out/tiny_v11"
plink2 --pfile "$out/tiny" --export bgen-1.3 bits=16 ref-first --out "$out/tiny_dos16"
plink2 --bfile "$out/tiny" --make-pgen --out "$out/tiny_p2hard"
plink2 --pfile "$out/tiny" --make-pgen --out "$out/p2copy"
cmp "$out/tiny.pgen" "$out/p2copy.pgen"  # plink2 rewrites pgenlib's dosage .pgen byte for byte
rm -f "$out"/p2copy.*
rm -f "$out"/*.log "$out"/tiny.truth.tsv "$out"/tiny.pairs.tsv "$out"/tiny.sim.json
plink2 --version > "$out/PLINK2_VERSION"
