#!/usr/bin/env bash
# tests/data/bgen/tiny.plink2.qt.glm.linear: plink2 --glm (linear regression, no random effect)
# of the quantitative trait on the tiny fixture's .pgen dosages, ALT tested (omit-ref), with
# A1_FREQ and MACH_R2.  tests/test_pgen.py compares the score test of a null without a genetic
# effect to it (BETA exactly, the t statistic from the score statistic, INFO against MACH_R2).
# Run after bgen_fixtures.sh.  Needs plink2 (apt-get install plink2).
set -euo pipefail
d="$(cd "$(dirname "$0")/../.." && pwd)/tests/data/bgen"
plink2 --pfile "$d/tiny" --pheno "$d/tiny.pheno" --pheno-name qt --covar "$d/tiny.covar" --covar-name age,sex \
    --glm hide-covar omit-ref cols=+a1freq,+machr2 --out "$d/tiny.plink2"
rm -f "$d/tiny.plink2.log"
