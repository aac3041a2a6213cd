"""Run gwas-glmm on deliberately bad inputs and print the table of messages in docs/inputs.md.

    python scripts/bad_inputs.py > /tmp/table.md

Every case must exit 1 with one line (no traceback); the script stops with an error otherwise.
Paths are shown relative to the work folder.  tests/test_realworld.py checks the same kinds of
input one by one.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from gwas_glmm.cli import main
from gwas_glmm.simulate import SimulationConfig, simulate_cohort


def _files(d: Path) -> None:
    """The broken files the cases read, next to a good cohort c.*."""
    (d / "bom.pheno").write_bytes("\ufeffFID\tIID\ty\nF1\tA\t1\n".encode())
    (d / "letters.pheno").write_text("FID IID y\n" + "".join(
        f"{f} {i} {'x' if k == 5 else k}\n" for k, (f, i) in enumerate(_ids(d))))
    (d / "const.pheno").write_text("FID IID y\n" + "".join(f"{f} {i} 3\n" for f, i in _ids(d)))
    (d / "na.pheno").write_text("FID IID y\n" + "".join(f"{f} {i} NA\n" for f, i in _ids(d)))
    (d / "dup.pheno").write_text("FID IID y\nF1 A 1\nF1 A 2\n")
    (d / "other.pheno").write_text("FID IID y\n" + "".join(f"S{f} S{i} {k}\n" for k, (f, i) in enumerate(_ids(d))))
    (d / "three.pheno").write_text("FID IID cc\n" + "".join(f"{f} {i} {k % 3 + 1}.5\n" for k, (f, i) in enumerate(_ids(d))))
    covar = pd.read_csv(d / "c.covar", sep="\t")
    covar["age_months"] = covar.age * 12
    covar.to_csv(d / "collinear.covar", sep="\t", index=False)
    bim = (d / "c.bim").read_text().splitlines()
    for ext in (".bed", ".fam"):
        shutil.copy(d / f"c{ext}", d / f"short{ext}")
    (d / "short.bim").write_text("\n".join(bim[:-1]) + "\n")
    (d / "results.tsv.gz").write_bytes(gzip.compress(b"CHROM\tGENPOS\tID\tP\n1\t10\tv\t0.5\n"))
    _dosage_files(d)


def _dosage_files(d: Path) -> None:
    """A .pgen of c's calls with one sample too few in its .psam; a BGEN with no sample IDs and a
    .sample one line short."""
    import numpy as np
    from bgen import BgenWriter

    from gwas_glmm.io.pgen import write_pgen
    from gwas_glmm.io.plink import PlinkFileset

    fs = PlinkFileset(d / "c")
    calls = fs.read(variants=np.arange(40)).T
    write_pgen(d / "short", fs.samples, fs.variants.take(np.arange(40)), [calls], dosages=False)
    psam = (d / "short.psam").read_text().splitlines()
    (d / "short.psam").write_text("\n".join(psam[:-1]) + "\n")
    with BgenWriter(str(d / "noids.bgen"), fs.n_samples, compression="zlib") as out:
        for j in range(5):
            probs = np.zeros((fs.n_samples, 3))
            g = np.nan_to_num(calls[j]).astype(int)
            probs[np.arange(fs.n_samples), 2 - g] = 1.0
            out.add_variant(f"v{j}", f"rs{j}", "1", 100 * (j + 1), ["A", "G"], probs)
    lines = ["ID_1 ID_2 missing", "0 0 0"] + [f"{f} {i} 0" for f, i in _ids(d)]
    (d / "short.sample").write_text("\n".join(lines[:-1]) + "\n")


def _ids(d: Path):
    fam = pd.read_csv(d / "c.fam", sep=r"\s+", header=None, dtype=str)
    return list(zip(fam[0], fam[1]))


CASES = [
    ("output equal to an input", "null --grm c.grm.h5 --pheno c.pheno --pheno-name qt --out c.grm.h5"),
    ("output folder not writable", "freq --bfile c --out c.bed/sub/f"),
    ("missing .bed", "freq --bfile nothere --out f"),
    (".bim one line short of the .bed", "freq --bfile short --out f"),
    ("chromosome selection with no variant", "scan --bfile c --null q.null.h5 --out s --chr 99"),
    (".psam one sample short of the .pgen", "freq --pgen short --out f"),
    ("BGEN without sample IDs, no --sample", "scan --bgen noids.bgen --null q.null.h5 --out s"),
    (".sample one line short of the .bgen", "freq --bgen noids.bgen --sample short.sample --out f"),
    ("--minINFO on hard calls", "freq --bfile c --out f --minINFO 0.3"),
    ("LOCO part missing for a scanned chromosome", "scan --bfile c --null noloco7.null.h5 --out s"),
    ("non-numeric phenotype", "null --grm c.grm.h5 --pheno letters.pheno --out n"),
    ("constant phenotype", "null --grm c.grm.h5 --pheno const.pheno --out n"),
    ("phenotype missing everywhere", "null --grm c.grm.h5 --pheno na.pheno --out n"),
    ("duplicate sample in a phenotype file", "null --grm c.grm.h5 --pheno dup.pheno --out n"),
    ("no sample in common with the .fam", "null --grm c.grm.h5 --pheno other.pheno --out n"),
    ("unknown column", "null --grm c.grm.h5 --pheno c.pheno --pheno-name qt,height --out n"),
    ("backwards column range", "null --grm c.grm.h5 --pheno c.pheno --pheno-name qt --covar c.covar --covar-name followup-age "
     "--out n"),
    ("binomial on a non-binary trait", "null --grm c.grm.h5 --pheno three.pheno --family binomial --out n"),
    ("binary and quantitative traits, no --family", "null --grm c.grm.h5 --pheno c.pheno --pheno-name bt1,qt --out n"),
    ("collinear covariates", "null --grm c.grm.h5 --pheno c.pheno --pheno-name qt --covar collinear.covar "
     "--covar-name age,age_months --out n"),
    ("GEMMA kinship without IDs", "null --grm k.cXX.txt --pheno c.pheno --pheno-name qt --out n"),
    ("X scanned, no sex in the .fam", "scan --bfile nosex --null q.null.h5 --out s --chr X"),
    ("negative seed", "simulate --out s --seed -1"),
    ("negative --top", "report --results results.tsv.gz --out r --top -1"),
    ("results file without CHISQ", "report --results results.tsv.gz --out r"),
    ("plot of a file that is not a results file", "plot --results c.pheno --out p"),
    ("--cluster without sbatch on the PATH", "scan --bfile c --null q.null.h5 --out s --cluster slurm"),
    ("another scan with the same --out running", "scan --bfile c --null q.null.h5 --out locked"),
]


def _run(argv: list[str]) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue().strip().splitlines()


def main_script() -> int:
    import h5py
    import numpy as np

    from gwas_glmm._atomic import exclusive
    from gwas_glmm.kinship.files import read_kinship

    os.environ["GWAS_GLMM_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        os.chdir(d)
        simulate_cohort(d / "c", SimulationConfig(n_samples=200, n_variants=800, n_x_variants=50, seed=3),
                        show_progress=False)
        _files(d)
        fam = pd.read_csv(d / "c.fam", sep=r"\s+", header=None)
        fam[4] = 0
        for ext in (".bed", ".bim"):
            shutil.copy(d / f"c{ext}", d / f"nosex{ext}")
        fam.to_csv(d / "nosex.fam", sep=" ", header=False, index=False)
        for argv in ("grm --bfile c --out c.grm.h5 --eigen",
                     "null --grm c.grm.h5 --pheno c.pheno --pheno-name qt --out q"):
            assert _run(argv.split())[0] == 0, argv
        shutil.copy(d / "q.null.h5", d / "noloco7.null.h5")
        with h5py.File(d / "noloco7.null.h5", "r+") as h5:
            del h5["pheno/qt/loco/7"]
        np.savetxt(d / "k.cXX.txt", read_kinship(d / "c.grm.h5").matrix, delimiter="\t")
        rows = ["| input | command | message |", "|---|---|---|"]
        with exclusive(d / "locked.ckpt.lock", "a scan"):
            for what, command in CASES:
                if "sbatch" in what and shutil.which("sbatch"):
                    continue
                code, lines = _run(command.split())
                if code != 1 or any("Traceback" in t for t in lines):
                    print(f"{what}: exit {code}\n" + "\n".join(lines[-15:]), file=sys.stderr)
                    return 1
                message = lines[-1].replace(f"{d}/", "").replace(str(d), ".").replace("|", "\\|")
                rows.append(f"| {what} | `gwas-glmm {command}` | {message} |")
        os.chdir("/")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main_script())
