"""CLI contract: parser defaults, help, one-line errors with exit code 1, logs and outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from gwas_glmm import __version__
from gwas_glmm.cli import get_parser, main
from gwas_glmm.simulate import SimulationConfig


def test_parser_defaults_match_library():
    args = get_parser().parse_args(["simulate", "--out", "x"])
    d = SimulationConfig()
    assert (args.n_samples, args.n_variants, args.seed, args.h2) == (d.n_samples, d.n_variants, d.seed, d.h2)
    assert args.prevalence == list(d.prevalences)
    f = get_parser().parse_args(["freq", "--bfile", "b", "--out", "o", "--maf", "0.01", "--chr", "1", "chr2"])
    assert (f.maf, f.mac, f.geno, f.chr) == (0.01, 0.0, 1.0, ["1", "chr2"])


def test_package_names_all_resolve_and_the_parser_stays_light():
    """Every public name of the lazily loaded packages imports (EAGER_IMPORT=1 makes lazy_loader
    import them at once); the command line's parser does not pull in pandas, scipy or dask."""
    code = ("import gwas_glmm, gwas_glmm.simulate; "
            "assert all(getattr(m, n) is not None for m in (gwas_glmm, gwas_glmm.simulate) for n in m.__all__)")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "EAGER_IMPORT": "1"})
    code = ("import sys, gwas_glmm.cli; heavy = [m for m in ('pandas', 'scipy', 'dask', 'numba', 'h5py') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("command", ["simulate", "freq", "demo"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "simulate" in capsys.readouterr().err


def test_module_entry_point_version():
    out = subprocess.run([sys.executable, "-m", "gwas_glmm", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"gwas-glmm {__version__}"


def test_simulate_then_freq(tmp_path, capsys):
    prefix = tmp_path / "sim" / "c"
    assert main(["simulate", "--out", str(prefix), "--n-samples", "60", "--n-variants", "300",
                 "--prevalence", "0.2", "--seed", "3"]) == 0
    err = capsys.readouterr().err
    assert "files written" in err and f"{prefix}.bed" in err
    assert (tmp_path / "sim" / "c.log").read_text().count("trait") >= 3
    pheno = pd.read_csv(f"{prefix}.pheno", sep="\t")
    assert list(pheno.columns) == ["#FID", "IID", "qt", "bt1", "count"]

    assert main(["freq", "--bfile", str(prefix), "--out", str(tmp_path / "f"), "--maf", "0.05",
                 "--chr", "1", "2", "3"]) == 0
    freq = pd.read_csv(tmp_path / "f.freq.tsv", sep="\t")
    assert list(freq.columns) == ["CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "MAC", "MISS", "N"]
    assert set(freq.CHROM) <= {1, 2, 3} and (freq.A1FREQ.between(0.05, 0.95)).all()
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("argv, expected", [
    (["freq", "--bfile", "{tmp}/nothere", "--out", "{tmp}/o"], "not found"),
    (["freq", "--bfile", "{tmp}/c", "--out", "{tmp}/o", "--extract", "{tmp}/none.txt"], "not found"),
    (["freq", "--bfile", "{tmp}/c", "--out", "{tmp}/o", "--maf", "0.9"], "--maf must lie in"),
    (["freq", "--bfile", "{tmp}/c", "--out", "{tmp}/o", "--threads", "0"], "--threads"),
    (["simulate", "--out", "{tmp}/s", "--n-samples", "2"], "n_samples"),
])
def test_errors_are_one_line_and_exit_1(tmp_path, small_cohort, capsys, argv, expected):
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(f"{small_cohort.bfile}{ext}", tmp_path / f"c{ext}")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"gwas-glmm {argv[0]}: error:") and expected in err[-1]
    assert not (tmp_path / "o.freq.tsv").exists()


def test_report_and_merge_check_the_columns_they_read(tmp_path, capsys):
    """A results file without A1FREQ still gets its lambdas (not the MAF >= 1% one); one without
    CHISQ is one line, exit 1, and no output."""
    import gzip

    rows = "".join(f"1\t{10 * k}\tv{k}\t{(k % 7) / 3}\t0.5\t0.3\n" for k in range(1, 50))
    plain = tmp_path / "plain.tsv.gz"
    plain.write_bytes(gzip.compress(("CHROM\tGENPOS\tID\tCHISQ\tP\tLOG10P\n" + rows).encode()))
    assert main(["report", "--results", str(plain), "--out", str(tmp_path / "r")]) == 0
    line = next(t for t in (tmp_path / "r.report.md").read_text().splitlines() if "lambda" in t)
    assert "(0.001 quantile)" in line and "MAF" not in line
    assert main(["merge", "--results", str(plain), "--out", str(tmp_path / "m.tsv.gz")]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.tsv.gz"
    bad.write_bytes(gzip.compress(b"CHROM\tGENPOS\tID\tP\n1\t10\tv\t0.5\n"))
    for argv, out in ((["report", "--results", str(bad), "--out", str(tmp_path / "b")], "b.report.md"),
                      (["merge", "--results", str(bad), "--out", str(tmp_path / "b.tsv.gz")], "b.tsv.gz")):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert "Traceback" not in "\n".join(err) and "no CHISQ" in err[-1]
        assert not (tmp_path / out).exists()


def test_demo_runs_the_whole_pipeline(tmp_path):
    from gwas_glmm.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-samples", "300", "--n-variants", "1500", "--threads", "2"]) == 0
    for name in ("cohort.grm.h5", "cohort.qt.null.h5", "cohort.qt.tsv.gz", "cohort.qt.manhattan.png",
                 "cohort.bt1.tsv.gz", "cohort.bt1.qq.png", "demo.log"):
        assert (out / name).exists(), name
    assert "demo finished" in (out / "demo.log").read_text()
