"""Issue 6: the Snakemake workflow end to end on a tiny simulated cohort, its merged results
equal to a direct scan with the same null model; merge and report on their own."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gwas_glmm import SimulationConfig, simulate_cohort
from gwas_glmm.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("wf") / "tiny",
                           SimulationConfig(n_samples=300, n_variants=3000, seed=11), show_progress=False)


def _snakemake(config, folder, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(["snakemake", "-s", str(ROOT / "workflows" / "Snakefile"), "--configfile", str(config),
                           "--cores", "2", "--directory", str(folder), *extra, "--quiet", "all"],
                          capture_output=True, text=True)


def _text(path) -> str:
    return gzip.decompress(Path(path).read_bytes()).decode()


def test_snakemake_workflow_matches_a_direct_scan(tiny, tmp_path):
    if shutil.which("snakemake") is None:
        pytest.fail("snakemake is in the test extra: pip install -e '.[test]'")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"bfile: {tiny.prefix}\npheno: {tiny.prefix}.pheno\ncovar: {tiny.prefix}.covar\n"
        "covar_names: [age, sex]\noutdir: results\nphenotypes:\n  qt: gaussian\n  bt1: binomial\n"
        "grm:\n  threads: 1\nscan:\n  scatter: 3\n  threads: 1\n")
    run = _snakemake(config, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results"
    for pheno in ("qt", "bt1"):
        parts = sorted((results / "scan" / pheno).glob(f"chunk*of3.{pheno}.tsv.gz"))
        assert len(parts) == 3
        assert main(["scan", "--bfile", str(tiny.prefix), "--null", str(results / "null" / f"{pheno}.null.h5"),
                     "--out", str(tmp_path / "direct")]) == 0
        merged = _text(results / f"{pheno}.tsv.gz")
        assert merged == _text(tmp_path / f"direct.{pheno}.tsv.gz")
        assert merged.count("\n") > 2500
        report = (results / f"{pheno}.report.md").read_text()
        assert "genomic-control lambda" in report and (results / f"{pheno}.manhattan.png").stat().st_size > 5000
    again = _snakemake(config, tmp_path, "--dry-run")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_merge_orders_parts_and_refuses_mixed_columns(tiny, tmp_path):
    prefix = str(tiny.prefix)
    grm = tmp_path / "g.grm.h5"
    assert main(["grm", "--bfile", prefix, "--out", str(grm), "--eigen", "--no-loco"]) == 0
    for pheno, family in (("qt", "gaussian"), ("bt1", "binomial")):
        assert main(["null", "--grm", str(grm), "--pheno", f"{prefix}.pheno", "--pheno-name", pheno, "--family",
                     family, "--out", str(tmp_path / pheno)]) == 0
    scan = ["scan", "--bfile", prefix, "--null", str(tmp_path / "qt.null.h5")]
    assert main(scan + ["--out", str(tmp_path / "all")]) == 0
    for c in ("1", "2", "3"):
        assert main(scan + ["--chr", c, "--out", str(tmp_path / f"c{c}")]) == 0
    assert main(scan + ["--chr", *map(str, range(4, 23)), "--out", str(tmp_path / "rest")]) == 0
    parts = [str(tmp_path / f"{p}.qt.tsv.gz") for p in ("rest", "c3", "c1", "c2")]  # given out of order
    assert main(["merge", "--results", *parts, "--out", str(tmp_path / "m.tsv.gz")]) == 0
    assert _text(tmp_path / "m.tsv.gz") == _text(tmp_path / "all.qt.tsv.gz")
    assert "genomic control lambda" in (tmp_path / "m.log").read_text()
    assert main(["scan", "--bfile", prefix, "--null", str(tmp_path / "bt1.null.h5"), "--chr", "1",
                 "--out", str(tmp_path / "b")]) == 0
    assert main(["merge", "--results", parts[0], str(tmp_path / "b.bt1.tsv.gz"), "--out",
                 str(tmp_path / "x.tsv.gz")]) == 1
    assert not (tmp_path / "x.tsv.gz").exists()
    assert main(["scan", *scan[1:], "--chunk", "4/3", "--out", str(tmp_path / "y")]) == 1
    assert main(["report", "--results", str(tmp_path / "m.tsv.gz"), "--out", str(tmp_path / "r"), "--top", "5"]) == 0
    assert (tmp_path / "r.report.md").read_text().count("\n| ") == 6  # header + 5 variants



def test_snakemake_biobank_option_runs_the_sparse_path(tiny, tmp_path):
    """sparse: {cutoff, n_pcs}: sparse GRM -> PCs -> null on the sparse GRM with the PCs -> scan."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"bfile: {tiny.prefix}\npheno: {tiny.prefix}.pheno\ncovar: {tiny.prefix}.covar\n"
        "covar_names: [age, sex]\noutdir: results\nphenotypes:\n  bt1: binomial\n"
        "sparse:\n  cutoff: 0.1\n  n_pcs: 4\ngrm:\n  threads: 1\nscan:\n  scatter: 2\n  threads: 1\n")
    run = _snakemake(config, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results"
    assert (results / "pcs.eigenvec").read_text().split("\n", 1)[0].split("\t")[-1] == "PC4"
    log = (results / "null" / "bt1.log").read_text()
    assert "null model path: sparse GRM" in log and "PC1" in (results / "null" / "bt1.log").read_text()
    assert _text(results / "bt1.tsv.gz").count("\n") > 2500


def test_snakemake_scans_imputed_dosages_one_pgen_per_chromosome(tiny, tmp_path):
    """scan.pgen: "imp/chr{chrom}": the GRM and null on the .bed, one scan job per chromosome's
    .pgen; the merged file equals a direct scan of each chromosome's file."""
    from gwas_glmm import PlinkFileset
    from gwas_glmm.io.pgen import write_pgen
    from gwas_glmm.simulate.dosages import imputed_dosages

    fs = PlinkFileset(tiny.bfile)
    rng = np.random.default_rng(4)
    chroms = list(dict.fromkeys(fs.variants.chrom))[:2]
    (tmp_path / "imp").mkdir()
    for chrom in chroms:
        index = np.flatnonzero(fs.variants.chrom == chrom)
        dosages = imputed_dosages(fs.read(variants=index).T.astype(np.float64), rng)
        write_pgen(tmp_path / "imp" / f"chr{chrom}", fs.samples, fs.variants.take(index), [dosages])
    config = tmp_path / "config.yaml"
    config.write_text(
        f"bfile: {tiny.prefix}\npheno: {tiny.prefix}.pheno\ncovar: {tiny.prefix}.covar\n"
        "covar_names: [age, sex]\noutdir: results\nphenotypes:\n  qt: gaussian\n"
        "grm:\n  threads: 1\n  loco: false\nscan:\n  threads: 1\n  pgen: imp/chr{chrom}\n")
    run = _snakemake(config, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results"
    assert sorted(p.name for p in (results / "scan" / "qt").glob("*.tsv.gz")) == \
        sorted(f"chr{c}.qt.tsv.gz" for c in chroms)
    merged = _text(results / "qt.tsv.gz")
    assert merged.split("\n", 1)[0].split("\t")[5:7] == ["A1FREQ", "INFO"]
    direct = []
    for chrom in chroms:
        assert main(["scan", "--pgen", str(tmp_path / "imp" / f"chr{chrom}"), "--null",
                     str(results / "null" / "qt.null.h5"), "--out", str(tmp_path / f"d{chrom}")]) == 0
        direct.append(_text(tmp_path / f"d{chrom}.qt.tsv.gz"))
    assert merged == direct[0] + "".join(text.split("\n", 1)[1] for text in direct[1:])


def test_snakemake_scans_one_bgen_per_chromosome(tmp_path):
    """scan.bgen: "imp/chr{chrom}" (.bgen + .sample per chromosome; here two, each a copy of the
    whole fixture, of which the job's --chr takes its chromosome): the merged file equals a direct
    scan of those chromosomes of the .bed the BGEN was written from, apart from INFO."""
    import pandas as pd
    from conftest import DATA

    data = tmp_path / "data"
    shutil.copytree(DATA / "bgen", data)
    chroms = list(dict.fromkeys(line.split("\t", 1)[0] for line in (data / "tiny.bim").read_text().splitlines()))[:2]
    (tmp_path / "imp").mkdir()
    for chrom in chroms:
        shutil.copy(data / "tiny_hard8.bgen", tmp_path / "imp" / f"chr{chrom}.bgen")
        shutil.copy(data / "tiny_hard8.sample", tmp_path / "imp" / f"chr{chrom}.sample")
    config = tmp_path / "config.yaml"
    pre = data / "tiny"
    config.write_text(
        f"bfile: {pre}\npheno: {pre}.pheno\ncovar: {pre}.covar\ncovar_names: [age, sex]\noutdir: results\n"
        "phenotypes:\n  qt: gaussian\ngrm:\n  threads: 1\n  loco: false\n  maf: 0.0\n  geno: 1.0\n"
        "scan:\n  threads: 1\n  bgen: imp/chr{chrom}\n")
    run = _snakemake(config, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results"
    assert len(list((results / "scan" / "qt").glob("chr*.qt.tsv.gz"))) == len(chroms)
    assert main(["scan", "--bfile", str(pre), "--null", str(results / "null" / "qt.null.h5"),
                 "--out", str(tmp_path / "direct"), "--chr", *chroms]) == 0
    merged = pd.read_csv(results / "qt.tsv.gz", sep="\t")
    pd.testing.assert_frame_equal(merged.drop(columns=["INFO"]), pd.read_csv(tmp_path / "direct.qt.tsv.gz", sep="\t"))
