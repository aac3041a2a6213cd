"""PLINK reading: streamed blocks and dask views equal bed-reader's whole-file read."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gwas_glmm import InputError, PlinkFileset, iter_blocks, read_bim, read_fam, select_variants


@pytest.fixture(scope="module")
def fileset(small_cohort):
    return PlinkFileset(small_cohort.bfile)


@pytest.fixture(scope="module")
def full(small_cohort):
    with open_bed(f"{small_cohort.bfile}.bed") as bed:
        return bed.read(dtype="float32")


def _stream(fileset, **kwargs):
    blocks = list(iter_blocks(fileset, **kwargs))
    dosages = np.concatenate([b.dosages for b in blocks], axis=1) if blocks else None
    index = np.concatenate([b.variant_index for b in blocks]) if blocks else np.zeros(0, int)
    return blocks, dosages, index


def test_read__matches_bed_reader(fileset, full):
    got = fileset.read()
    assert got.dtype == np.float32 and got.flags.f_contiguous
    np.testing.assert_array_equal(got, full)
    assert np.isnan(got).any(), "the simulated cohort should have missing calls"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_imputed__equals_bed_reader_then_mean_imputation(fileset, full, data):
    """The scan's own .bed decoder against bed-reader: any sample subset (order, repeats, all of
    them), consecutive or scattered variants; the means over called samples, the counts and the
    missing mask."""
    n, m = full.shape
    samples = data.draw(st.one_of(st.none(), st.just(np.arange(n)),
                                  st.lists(st.integers(0, n - 1), min_size=1, max_size=n).map(np.array)))
    start = data.draw(st.integers(0, m - 1))
    variants = data.draw(st.one_of(st.just(np.arange(start, min(m, start + 37))),
                                   st.lists(st.integers(0, m - 1), min_size=1, max_size=20).map(np.array)))
    ref = full[:, variants] if samples is None else full[samples][:, variants]
    got, stats, missing = fileset.read_imputed(samples, variants, missing=True)
    called = ~np.isnan(ref)
    np.testing.assert_array_equal(missing, ~called)
    np.testing.assert_array_equal(stats.n_obs, called.sum(axis=0))
    np.testing.assert_array_equal(stats.allele1_count, np.nansum(ref, axis=0))
    with np.errstate(invalid="ignore"):
        mean = np.where(stats.n_obs > 0, np.nansum(ref, axis=0) / np.maximum(stats.n_obs, 1), 0.0)
    np.testing.assert_allclose(got, np.where(called, ref, mean[None, :].astype(np.float32)), rtol=1e-6)
    assert got.dtype == np.float32 and got.flags.f_contiguous


def test_read_imputed__into_a_buffer(fileset, full):
    buffer = np.full(full.size, np.nan, dtype=np.float32)
    got, _, missing = fileset.read_imputed(None, np.arange(5), out=buffer)
    assert missing is None and np.shares_memory(got, buffer)
    np.testing.assert_array_equal(np.isnan(got), np.zeros_like(got, dtype=bool))


def test_metadata__matches_bed_reader(small_cohort, fileset):
    with open_bed(f"{small_cohort.bfile}.bed") as bed:
        np.testing.assert_array_equal(fileset.variants.id, bed.sid)
        np.testing.assert_array_equal(fileset.variants.pos, bed.bp_position)
        np.testing.assert_array_equal(fileset.variants.allele1, bed.allele_1)
        np.testing.assert_array_equal(fileset.samples.iid, bed.iid)
        np.testing.assert_array_equal(fileset.samples.fid, bed.fid)


@st.composite
def stream_args(draw):
    n, m = 300, 1200
    block_size = draw(st.integers(1, 700))
    samples = None
    if draw(st.booleans()):
        k = draw(st.integers(1, n))
        samples = draw(st.permutations(range(n)))[:k]
    kind = draw(st.sampled_from(["all", "range", "subset"]))
    variants = None
    if kind == "range":
        start = draw(st.integers(0, m - 1))
        stop = draw(st.integers(start + 1, m))
        variants = np.arange(start, stop)
    elif kind == "subset":
        variants = np.sort(draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=300, unique=True)))
    return block_size, samples, variants, draw(st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=stream_args())
def test_iter_blocks__equals_full_read(fileset, full, args):
    block_size, samples, variants, prefetch = args
    blocks, dosages, index = _stream(fileset, samples=samples, variants=variants,
                                     block_size=block_size, prefetch=prefetch)
    rows = slice(None) if samples is None else np.asarray(samples)
    cols = np.arange(full.shape[1]) if variants is None else variants
    np.testing.assert_array_equal(index, cols)
    np.testing.assert_array_equal(dosages, full[rows][:, cols])
    assert all(len(b) <= block_size and b.dosages.flags.f_contiguous for b in blocks)
    for b in blocks:
        np.testing.assert_array_equal(b.variants.id, fileset.variants.id[b.variant_index])


@pytest.mark.parametrize("chunk", [1, 77, 512, 5000])
def test_to_dask__equals_full_read(fileset, full, chunk):
    samples = np.arange(0, 300, 3)[::-1]
    variants = np.arange(100, 1100)
    arr = fileset.to_dask(samples=samples, variants=variants, chunk_variants=chunk)
    assert arr.shape == (100, 1000) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr.compute(scheduler="threads"), full[samples][:, variants])
    np.testing.assert_array_equal(fileset.to_dask().compute(scheduler="sync"), full)


def test_select_variants(fileset):
    v = fileset.variants
    chr2 = select_variants(v, chrom=["chr2"])
    assert len(chr2) and set(v.chrom[chr2]) == {"2"}
    np.testing.assert_array_equal(chr2, select_variants(v, chrom=["2"]))
    ids = list(v.id[[5, 9, 700]])
    np.testing.assert_array_equal(select_variants(v, include=ids), [5, 9, 700])
    assert len(select_variants(v, exclude=ids)) == len(v) - 3
    np.testing.assert_array_equal(select_variants(v, index_range=(10, 20), exclude=ids), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    with pytest.raises(InputError, match="outside"):
        select_variants(v, index_range=(0, 10**6))


def test_streaming_memory_is_bounded_by_block(fileset):
    """Peak Python-side allocation while streaming is a few blocks, not the file."""
    block_size = 50
    block_bytes = 4 * fileset.n_samples * block_size
    file_bytes = 4 * fileset.n_samples * fileset.n_variants
    list(iter_blocks(fileset, block_size=block_size))  # compile kernels first
    tracemalloc.start()
    for _ in iter_blocks(fileset, block_size=block_size):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * block_bytes + 200_000, (peak, block_bytes)
    assert peak < file_bytes / 4


# --- bad input: one clear line naming the file --------------------------------------------

@pytest.fixture()
def copy(small_cohort, tmp_path):
    def make(name="c"):
        for ext in (".bed", ".bim", ".fam"):
            shutil.copy(f"{small_cohort.bfile}{ext}", tmp_path / f"{name}{ext}")
        return tmp_path / name
    return make


def _open_error(prefix) -> str:
    with pytest.raises(InputError) as err:
        PlinkFileset(prefix)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_magic(copy):
    prefix = copy()
    data = bytearray(Path(f"{prefix}.bed").read_bytes())
    data[0] = 0x00
    Path(f"{prefix}.bed").write_bytes(bytes(data))
    msg = _open_error(prefix)
    assert f"{prefix}.bed" in msg and "not a PLINK 1 .bed" in msg


def test_sample_major_bed(copy):
    prefix = copy()
    data = bytearray(Path(f"{prefix}.bed").read_bytes())
    data[2] = 0x00
    Path(f"{prefix}.bed").write_bytes(bytes(data))
    assert "sample-major" in _open_error(prefix)


def test_truncated_bed(copy):
    prefix = copy()
    data = Path(f"{prefix}.bed").read_bytes()
    Path(f"{prefix}.bed").write_bytes(data[:-10])
    msg = _open_error(prefix)
    assert "truncated" in msg and "1200 variants" in msg and "300 samples" in msg


def test_bim_count_mismatch(copy):
    prefix = copy()
    lines = Path(f"{prefix}.bim").read_text().splitlines(keepends=True)
    Path(f"{prefix}.bim").write_text("".join(lines[:-1]))
    assert "1199 variants" in _open_error(prefix)


def test_fam_count_mismatch(copy):
    prefix = copy()
    lines = Path(f"{prefix}.fam").read_text().splitlines(keepends=True)
    Path(f"{prefix}.fam").write_text("".join(lines + [f"X Y{k} 0 0 1 -9\n" for k in range(8)]))
    assert "308 samples" in _open_error(prefix)


def test_missing_file(copy):
    prefix = copy()
    (prefix.parent / "c.bim").unlink()
    msg = _open_error(prefix)
    assert "not found" in msg and "c.bim" in msg


def test_duplicate_sample(copy):
    prefix = copy()
    lines = Path(f"{prefix}.fam").read_text().splitlines(keepends=True)
    lines[5] = lines[2]
    Path(f"{prefix}.fam").write_text("".join(lines))
    msg = _open_error(prefix)
    assert "rows 3 and 6" in msg and "unique" in msg


def test_duplicate_variant(copy):
    prefix = copy()
    lines = Path(f"{prefix}.bim").read_text().splitlines(keepends=True)
    fields = lines[10].split("\t")
    fields[1] = lines[3].split("\t")[1]
    lines[10] = "\t".join(fields)
    Path(f"{prefix}.bim").write_text("".join(lines))
    msg = _open_error(prefix)
    assert "rows 4 and 11" in msg


def test_dot_ids_are_not_duplicates(copy):
    prefix = copy()
    lines = Path(f"{prefix}.bim").read_text().splitlines(keepends=True)
    for k in (1, 2):
        fields = lines[k].split("\t")
        fields[1] = "."
        lines[k] = "\t".join(fields)
    Path(f"{prefix}.bim").write_text("".join(lines))
    assert (read_bim(f"{prefix}.bim").id[1:3] == ".").all()


def test_non_numeric_position(copy):
    prefix = copy()
    lines = Path(f"{prefix}.bim").read_text().splitlines(keepends=True)
    fields = lines[7].split("\t")
    fields[3] = "12x"
    lines[7] = "\t".join(fields)
    Path(f"{prefix}.bim").write_text("".join(lines))
    msg = _open_error(prefix)
    assert "row 8" in msg and "'12x'" in msg


def test_short_fam_row(tmp_path):
    path = tmp_path / "x.fam"
    path.write_text("A A1 0 0 1 -9\nB B1 0 0 1\n")
    with pytest.raises(InputError, match="x.fam"):
        read_fam(path)


def test_worker_fileset_reuses_the_drivers_and_opens_once(fileset, monkeypatch):
    """A threaded scan's workers read through the driver's open fileset (``share_fileset``); a
    source nobody shared is opened once however many threads ask for it at the same moment."""
    import threading

    from gwas_glmm.io import plink

    plink.share_fileset(fileset)
    assert plink.worker_fileset(fileset.source, fileset.num_threads) is fileset
    opened = []
    real = plink.open_genotypes

    def counting(source, **kwargs):
        opened.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr(plink, "open_genotypes", counting)
    plink._opened.cache_clear()
    results = []
    start = threading.Barrier(4)

    def ask():
        start.wait()
        results.append(plink.worker_fileset(fileset.source, 3))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(opened) == 1 and all(r is results[0] for r in results) and results[0] is not fileset
    plink._opened.cache_clear()
