#!/usr/bin/env python3
"""Makes the gemma -lmm 4 reference checked by tests/test_gemma_reference.py.

Needs gwas-glmm installed and gemma (Debian: apt-get install gemma).  On tests/data/sim_small
(300 samples, 1,000 variants) it writes a quantitative phenotype (fixed seed: a polygenic
effect through our GRM plus noise) and a covariate, our GRM (mean-imputation mode, so it is
positive semi-definite as gemma requires) as gemma's text kinship, runs

    gemma -bfile sim_small -p pheno -c covar -k grm.txt -lmm 4 -miss 1 -maf 0.01

and stores the phenotype, covariate, GRM parameters and gemma's rs / p_score / p_wald columns
under tests/data/gemma/.  Run from the repository root.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from gwas_glmm import GrmConfig, PlinkFileset, compute_grm

DATA = Path("tests/data")
OUT = DATA / "gemma"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    fs = PlinkFileset(DATA / "sim_small")
    kin, _ = compute_grm(fs, config=GrmConfig(missing="mean-impute", double=True))
    n = fs.n_samples
    rng = np.random.default_rng(2024)
    vals, vecs = np.linalg.eigh(kin.matrix)
    g = vecs @ (np.sqrt(np.clip(vals, 0, None)) * rng.normal(size=n))
    age = rng.normal(50, 10, n)
    y = 1.0 + 0.02 * age + 0.8 * g + rng.normal(0, 0.8, n)
    pd.DataFrame({"y": y}).to_csv(OUT / "pheno.txt", header=False, index=False, float_format="%.10g")
    pd.DataFrame({"one": np.ones(n), "age": age}).to_csv(OUT / "covar.txt", sep="\t", header=False, index=False,
                                                         float_format="%.10g")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savetxt(tmp / "grm.txt", kin.matrix, fmt="%.12g", delimiter="\t")
        for ext in ("bed", "bim", "fam"):
            shutil.copy(DATA / f"sim_small.{ext}", tmp / f"sim.{ext}")
        subprocess.run(["gemma", "-bfile", str(tmp / "sim"), "-p", str((OUT / "pheno.txt").resolve()),
                        "-c", str((OUT / "covar.txt").resolve()), "-k", str(tmp / "grm.txt"), "-lmm", "4",
                        "-miss", "1", "-maf", "0.01", "-o", "lmm", "-outdir", str(tmp / "out")],
                       check=True, capture_output=True, cwd=tmp)
        res = pd.read_csv(tmp / "out" / "lmm.assoc.txt", sep="\t")
        log = (tmp / "out" / "lmm.log.txt").read_text()
    res[["rs", "allele1", "allele0", "af", "beta", "se", "p_wald", "p_score"]].to_csv(
        OUT / "lmm4.assoc.tsv", sep="\t", index=False, float_format="%.8g")
    version = subprocess.run(["gemma"], capture_output=True, text=True).stdout.splitlines()[0]
    (OUT / "README.txt").write_text(
        f"{version}\nGRM: gwas_glmm compute_grm(missing='mean-impute', double=True), MAF >= 0.01, missing <= 0.05\n"
        "command: gemma -bfile sim_small -p pheno.txt -c covar.txt -k grm.txt -lmm 4 -miss 1 -maf 0.01\n"
        + "\n".join(line for line in log.splitlines() if "lambda" in line or "vg" in line or "ve" in line) + "\n")
    print(f"{len(res)} variants written to {OUT / 'lmm4.assoc.tsv'}")


if __name__ == "__main__":
    main()
