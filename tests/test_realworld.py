"""Real-world files and failure modes (issue 15): no silent wrong answers, the files plink2,
GEMMA and GCTA users have, and one line with exit code 1 for every bad input."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from gwas_glmm.cli import main
from gwas_glmm.gwas.store import load_nulls


@pytest.fixture(scope="module")
def work(small_cohort, tmp_path_factory):
    """A copy of the small cohort, its GRM (no LOCO parts) and a quantitative null."""
    d = tmp_path_factory.mktemp("realworld")
    for ext in (".bed", ".bim", ".fam", ".pheno", ".covar"):
        shutil.copy(f"{small_cohort.prefix}{ext}", d / f"c{ext}")
    assert main(["grm", "--bfile", str(d / "c"), "--out", str(d / "c.grm.h5"), "--no-loco", "--eigen"]) == 0
    return d


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err), err
    assert err[-1].startswith("gwas-glmm ") and ": error: " in err[-1], err[-1]
    for fragment in fragments:
        assert fragment in err[-1], (fragment, err[-1])
    return err[-1]


def test_an_output_never_overwrites_an_input(work, capsys):
    grm = work / "c.grm.h5"
    before = grm.read_bytes()
    cases = [
        ["null", "--grm", str(grm), "--pheno", str(work / "c.pheno"), "--pheno-name", "qt", "--out", str(grm)],
        ["convert-kinship", "--kinship", str(grm), "--out", str(grm)],
        ["null", "--grm", str(grm), "--pheno", str(work / "c.pheno"), "--out", str(work / "x") + "/../c.grm.h5"],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        one_line_error(capsys, "would overwrite", "choose another --out")
    assert grm.read_bytes() == before
    rows = work / "r.tsv.gz"
    rows.write_bytes(b"")
    assert main(["merge", "--results", str(rows), "--out", str(rows)]) == 1
    one_line_error(capsys, "would overwrite")


def test_binary_trait_is_fitted_as_binomial_when_family_is_omitted(work, capsys):
    """The old default fitted a detected case/control trait as Gaussian without a word."""
    args = ["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(work / "c.pheno"), "--covar", str(work / "c.covar"),
            "--covar-name", "age,sex"]
    assert main([*args, "--pheno-name", "bt1", "--out", str(work / "bt")]) == 0
    assert "--family not given: binomial" in capsys.readouterr().err
    assert load_nulls(work / "bt.null.h5")[0]["bt1"].family == "binomial"
    assert main([*args, "--pheno-name", "bt1", "qt", "--out", str(work / "mixed")]) == 1
    one_line_error(capsys, "bt1 are case/control and qt are not", "--family")
    assert main([*args, "--pheno-name", "qt", "--family", "binomial", "--out", str(work / "q")]) == 1
    one_line_error(capsys, "phenotype qt is not case/control (values")


def test_plink_case_control_coding_with_zero_missing(work):
    """1 = control, 2 = case, 0 and -9 missing: read as plink2 reads it, not as a 3-level number."""
    pheno = pd.read_csv(work / "c.pheno", sep="\t")
    coded = pheno[["#FID", "IID"]].copy()
    coded["cc"] = (pheno.bt1 + 1).fillna(-9).astype(int)
    coded.loc[:9, "cc"] = 0
    coded.loc[10:14, "cc"] = -9
    observed = int((coded.cc > 0).sum())
    coded.to_csv(work / "cc.pheno", sep=" ", index=False)
    assert main(["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(work / "cc.pheno"), "--out", str(work / "cc")]) == 0
    null = load_nulls(work / "cc.null.h5")[0]["cc"]
    assert null.family == "binomial" and null.n == observed
    assert set(np.unique(null.y)) == {0.0, 1.0}


def test_empty_variant_selection_is_one_line(work, capsys):
    assert main(["grm", "--bfile", str(work / "c"), "--out", str(work / "e"), "--chr", "99"]) == 1
    one_line_error(capsys, "no variant is left after --chr 99", "chromosomes: 1, 2")
    assert main(["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(work / "c.pheno"), "--pheno-name", "qt",
                 "--out", str(work / "q")]) == 0
    assert main(["scan", "--bfile", str(work / "c"), "--null", str(work / "q.null.h5"), "--out", str(work / "e"),
                 "--chr", "99"]) == 1
    one_line_error(capsys, "no variant is left")
    assert not list(work.glob("e.*.tsv.gz"))


def test_fam_with_extra_phenotype_columns_as_gemma_ships_it(work, capsys):
    """GEMMA's mouse_hs1940 .fam has 11 columns: accepted, and its phenotypes read as PHENO1..."""
    d = work / "gemma"
    d.mkdir()
    for ext in (".bed", ".bim"):
        shutil.copy(work / f"c{ext}", d / f"m{ext}")
    fam = pd.read_csv(work / "c.fam", sep=r"\s+", header=None)
    pheno = pd.read_csv(work / "c.pheno", sep="\t")
    fam[5] = pheno.qt.round(4).fillna(-9)
    for k in range(6, 11):
        fam[k] = np.where((np.arange(len(fam)) % (k + 1) == 0) | pheno.qt.isna(), "NA", (pheno.qt * k).round(3).astype(str))
    fam.to_csv(d / "m.fam", sep=" ", header=False, index=False)
    assert main(["freq", "--bfile", str(d / "m"), "--out", str(d / "m")]) == 0
    assert main(["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(d / "m.fam"), "--pheno-name", "PHENO1",
                 "PHENO3", "--out", str(d / "m")]) == 0
    nulls = load_nulls(d / "m.null.h5")[0]
    assert sorted(nulls) == ["PHENO1", "PHENO3"] and nulls["PHENO3"].n < nulls["PHENO1"].n


def test_every_documented_kinship_format_works_as_null_grm(work):
    """convert-kinship's .h5 (refused before: its format attribute was the source's), GCTA, plink2
    and GEMMA files give the same null model as the GRM they came from."""
    grm = work / "c.grm.h5"
    base = ["--pheno", str(work / "c.pheno"), "--pheno-name", "qt", "--covar", str(work / "c.covar"),
            "--covar-name", "age"]
    assert main(["null", "--grm", str(grm), *base, "--out", str(work / "ref")]) == 0
    ref = load_nulls(work / "ref.null.h5")[0]["qt"]
    kinships = [work / "k.rel", work / "k.rel.bin", work / "k.grm.bin", work / "k2.h5"]
    for path in kinships[:3]:
        assert main(["convert-kinship", "--kinship", str(grm), "--out", str(path)]) == 0
    assert main(["convert-kinship", "--kinship", str(work / "k.rel"), "--out", str(work / "k2.h5")]) == 0
    from gwas_glmm.kinship.files import read_kinship

    np.savetxt(work / "k.cXX.txt", read_kinship(grm).matrix, delimiter="\t", fmt="%.9g")
    for path, extra in [(p, []) for p in kinships] + [(work / "k.cXX.txt", ["--grm-ids", str(work / "c.fam")])]:
        out = work / f"via_{path.name.replace('.', '_')}"
        assert main(["null", "--grm", str(path), *extra, *base, "--out", str(out)]) == 0, path
        got = load_nulls(f"{out}.null.h5")[0]["qt"]
        np.testing.assert_allclose(got.tau, ref.tau, rtol=1e-4)
        np.testing.assert_allclose(got.py, ref.py, rtol=1e-3, atol=1e-6)


def test_logs_append_and_start_with_version_and_command(work):
    from gwas_glmm import __version__

    args = ["freq", "--bfile", str(work / "c"), "--out", str(work / "f"), "--maf", "0.1"]
    assert main(args) == 0
    assert main(args) == 0
    text = (work / "f.log").read_text()
    assert text.count(f"gwas-glmm {__version__} (Python") == 2
    assert "gwas-glmm freq --bfile" in text and "--maf 0.1" in text


@pytest.mark.parametrize("command", ["freq", "grm", "null", "scan", "plot", "convert-kinship", "simulate"])
def test_an_output_folder_that_cannot_be_written_is_one_line(work, capsys, command):
    """The log is opened inside the error handler: a folder that is a file (or read-only, or full)
    is one line and exit 1 for every subcommand, not a traceback."""
    bad = str(work / "c.bed" / "sub" / "o")
    argv = {"freq": ["--bfile", str(work / "c")], "grm": ["--bfile", str(work / "c")],
            "null": ["--grm", str(work / "c.grm.h5"), "--pheno", str(work / "c.pheno"), "--pheno-name", "qt"],
            "scan": ["--bfile", str(work / "c"), "--null", str(work / "c.grm.h5")],
            "plot": ["--results", str(work / "c.pheno")], "convert-kinship": ["--kinship", str(work / "c.grm.h5")],
            "simulate": []}[command]
    assert main([command, *argv, "--out", bad + (".h5" if command == "convert-kinship" else "")]) == 1
    one_line_error(capsys, "cannot write")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_one_line(work, capsys):
    d = work / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        assert main(["freq", "--bfile", str(work / "c"), "--out", str(d / "f")]) == 1
        one_line_error(capsys, "cannot write")
    finally:
        d.chmod(0o755)


@pytest.fixture(scope="module")
def null_file(work):
    assert main(["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(work / "c.pheno"), "--pheno-name", "qt",
                 "--out", str(work / "qt")]) == 0
    return work / "qt.null.h5"


def test_bad_values_and_missing_tools_are_one_line_before_any_work(work, null_file, capsys, monkeypatch):
    scan = ["scan", "--bfile", str(work / "c"), "--null", str(null_file), "--out", str(work / "v")]
    cases = [
        (["simulate", "--out", str(work / "s"), "--seed", "-1"], "--seed must be"),
        (["report", "--results", str(work / "none.tsv.gz"), "--out", str(work / "r"), "--top", "-1"], "--top"),
        ([*scan, "--block-size", "0"], "--block-size"),
        ([*scan, "--maf", "0.7"], "--maf"),
        ([*scan, "--cluster", "slurm", "--cluster-wait", "5"], "sbatch is not on the PATH"),
    ]
    if shutil.which("sbatch") is not None:
        cases.pop()
    for argv, fragment in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        one_line_error(capsys, fragment)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    capsys.readouterr()
    assert main([*scan, "--parquet"]) == 1
    one_line_error(capsys, "--parquet needs pyarrow")
    assert [p.name for p in work.glob("v.*")] == ["v.log"]  # checked before the scan: no checkpoint, no results


def test_two_scans_with_one_out_do_not_collide(work, null_file, capsys):
    """The second is one line naming the first; it leaves no checkpoint folder behind."""
    from gwas_glmm._atomic import exclusive

    out = work / "twice"
    with exclusive(f"{out}.ckpt.lock", "a scan"):
        assert main(["scan", "--bfile", str(work / "c"), "--null", str(null_file), "--out", str(out)]) == 1
        one_line_error(capsys, f"a scan with --out {out} is already running", f"process {os.getpid()}")
        assert not (work / "twice.ckpt").exists()
    assert main(["scan", "--bfile", str(work / "c"), "--null", str(null_file), "--out", str(out)]) == 0
    assert not list(work.glob("twice.ckpt*"))


def test_plot_reads_results_only_and_counts_tested_rows(work, null_file, capsys):
    from gwas_glmm.plot import plot_lambda, read_results

    assert main(["scan", "--bfile", str(work / "c"), "--null", str(null_file), "--out", str(work / "p")]) == 0
    table = pd.read_csv(work / "p.qt.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    table.loc[::10, ["BETA", "SE", "CHISQ", "P", "LOG10P"]] = "NA"  # rows without a test, as other tools write
    table.to_csv(work / "na.tsv.gz", sep="\t", index=False)
    results = read_results(work / "na.tsv.gz")
    assert results.LOG10P.isna().sum() == len(results[::10])
    lam = plot_lambda(results)
    assert np.isfinite(lam) and 0.5 < lam < 2
    assert main(["plot", "--results", str(work / "na.tsv.gz"), "--out", str(work / "p")]) == 0
    assert f"lambda_GC {lam:.3f}" in capsys.readouterr().err
    for bad, fragment in ((work / "nothere.tsv.gz", "not found"), (work / "c.pheno", "no CHROM, GENPOS")):
        assert main(["plot", "--results", str(bad), "--out", str(work / "bad")]) == 1
        one_line_error(capsys, fragment)
    assert not list(work.glob("bad.*.png"))


def test_progress_is_logged_with_rate_and_eta_when_stderr_is_not_a_terminal(work, monkeypatch):
    monkeypatch.setenv("GWAS_GLMM_PROGRESS_INTERVAL", "0")
    assert main(["freq", "--bfile", str(work / "c"), "--out", str(work / "prog"), "--block-size", "100"]) == 0
    lines = [t for t in (work / "prog.log").read_text().splitlines() if "genotypes:" in t]
    assert lines and "var/s" in lines[-1] and "ETA" in lines[-1] and "1200/1200" in lines[-1]


def test_messages_name_the_users_columns(work, capsys):
    """Collinear covariates and separation name the covariate-file columns, not x2 or a rank."""
    covar = pd.read_csv(work / "c.covar", sep="\t")
    pheno = pd.read_csv(work / "c.pheno", sep="\t")
    covar["age_months"] = covar.age * 12
    covar["carrier"] = pheno.bt1.fillna(0)  # predicts the trait perfectly
    covar.to_csv(work / "x.covar", sep="\t", index=False)
    base = ["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(work / "c.pheno"), "--covar",
            str(work / "x.covar"), "--out", str(work / "msg")]
    for trait, family in (("qt", "gaussian"), ("bt1", "binomial")):
        capsys.readouterr()
        assert main([*base, "--pheno-name", trait, "--covar-name", "sex,age,age_months", "--family", family]) == 1
        one_line_error(capsys, f"phenotype {trait}:", "age, age_months are collinear")
    assert main([*base, "--pheno-name", "bt1", "--covar-name", "age,carrier"]) == 1
    line = one_line_error(capsys, "carrier", "separation")
    assert "x2" not in line and "np.str_" not in line
    empty = pheno.copy()
    empty["qt"] = "NA"
    empty.to_csv(work / "empty.pheno", sep="\t", index=False)
    assert main(["null", "--grm", str(work / "c.grm.h5"), "--pheno", str(work / "empty.pheno"), "--pheno-name", "qt",
                 "--out", str(work / "msg")]) == 1
    one_line_error(capsys, f"{work / 'empty.pheno'}: phenotype 'qt' is missing in every sample")


def test_an_interrupted_console_run_says_how_to_resume_and_a_second_ctrl_c_ends_it(work, capsys, monkeypatch):
    """The console script (cli.run) reports the first Ctrl-C in one line (a scan: rerun to resume)
    and leaves SIGINT to the system, so that a second one ends the process without a traceback;
    a Python session calling main() keeps its own handler."""
    import signal

    import gwas_glmm.cli as cli
    from gwas_glmm.cli import runners

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(runners.RUNNERS, "scan", interrupted)
    before = signal.getsignal(signal.SIGINT)
    argv = ["scan", "--bfile", str(work / "c"), "--null", str(work / "qt.null.h5"), "--out", str(work / "i")]
    try:
        assert main(argv) == 130
        assert signal.getsignal(signal.SIGINT) is before  # not the console script: untouched
        assert "run the same command again to resume" in capsys.readouterr().err.strip().splitlines()[-1]
        monkeypatch.setattr(cli, "_CONSOLE", True)
        assert main(argv) == 130
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)
