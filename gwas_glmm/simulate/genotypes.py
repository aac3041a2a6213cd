"""Simulated variants: genome layout, allele frequencies with population drift, and genotypes
passed down a pedigree.

* Layout: variants spread over 22 autosomes in proportion to their GRCh37 lengths, strictly
  increasing positions, IDs ``chrom:pos:allele0:allele1``.
* Frequencies: the ancestral minor allele frequency is uniform on [0.05, 0.5] for 70% of the
  variants and log-uniform on [min_maf, 0.05] for the rest (a spectrum with rare variants);
  each population's ALLELE1 frequency is drawn from the Balding-Nichols model
  Beta(p(1-F)/F, (1-p)(1-F)/F) with F = ``fst``.
* Genotypes: founders draw two haplotypes from their population's frequencies; each child takes
  one of the two alleles of each parent at random, independently per variant (no linkage).
* Missing calls: probability r_v * s_i for variant rate r_v ~ missing_rate * Gamma(2, 1/2) and
  sample factor s_i ~ Gamma(4, 1/4), both with mean 1 beside ``missing_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.plink import VariantTable
from .pedigree import Pedigree

# GRCh37 autosome lengths in Mb
CHROM_LENGTHS_MB = (249, 243, 198, 191, 181, 171, 159, 146, 141, 136, 135, 134, 115, 107, 102,
                    90, 81, 78, 59, 63, 48, 51)
_ALLELE_PAIRS = (("A", "G"), ("G", "A"), ("C", "T"), ("T", "C"), ("A", "C"), ("C", "A"), ("G", "T"), ("T", "G"))
MISSING_INT8 = -127


X_LENGTH_MB = 155


def simulate_x_layout(n_variants: int, rng: np.random.Generator) -> VariantTable:
    """Positions, alleles and IDs of ``n_variants`` variants on chromosome X (its non-PAR part)."""
    pos = (np.sort(rng.integers(2_700_000, X_LENGTH_MB * 1_000_000 - n_variants, size=n_variants))
           + np.arange(n_variants)).astype(np.int64)
    pairs = rng.integers(len(_ALLELE_PAIRS), size=n_variants)
    allele0 = np.array([_ALLELE_PAIRS[p][0] for p in pairs], dtype=object)
    allele1 = np.array([_ALLELE_PAIRS[p][1] for p in pairs], dtype=object)
    chrom = np.full(n_variants, "X", dtype=object)
    ids = np.array([f"X:{p}:{a0}:{a1}" for p, a0, a1 in zip(pos, allele0, allele1)], dtype=object)
    return VariantTable(chrom, ids, pos / 1e6, pos, allele1, allele0)


def simulate_layout(n_variants: int, rng: np.random.Generator) -> VariantTable:
    lengths = np.array(CHROM_LENGTHS_MB, dtype=np.float64)
    share = n_variants * lengths / lengths.sum()
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(-(share - counts))[: n_variants - counts.sum()]] += 1
    chrom, pos = [], []
    for c, (k, length) in enumerate(zip(counts, CHROM_LENGTHS_MB), start=1):
        if k == 0:
            continue
        raw = np.sort(rng.integers(1, int(length * 1e6) - k, size=k)) + np.arange(k)
        chrom += [str(c)] * k
        pos.append(raw)
    pos = np.concatenate(pos).astype(np.int64)
    pairs = rng.integers(len(_ALLELE_PAIRS), size=n_variants)
    allele0 = np.array([_ALLELE_PAIRS[p][0] for p in pairs], dtype=object)
    allele1 = np.array([_ALLELE_PAIRS[p][1] for p in pairs], dtype=object)
    chrom = np.array(chrom, dtype=object)
    ids = np.array([f"{c}:{p}:{a0}:{a1}" for c, p, a0, a1 in zip(chrom, pos, allele0, allele1)], dtype=object)
    return VariantTable(chrom, ids, pos / 1e6, pos, allele1, allele0)


@dataclass(frozen=True)
class Frequencies:
    ancestral: np.ndarray  # ALLELE1 frequency before drift, (M,)
    population: np.ndarray  # ALLELE1 frequency per population, (M, K)
    missing_rate: np.ndarray  # per-variant missing-call rate r_v, (M,)


def simulate_frequencies(
    n_variants: int, n_populations: int, fst: float, min_maf: float, missing_rate: float,
    rng: np.random.Generator,
) -> Frequencies:
    common = rng.random(n_variants) < 0.7
    maf = np.where(
        common,
        rng.uniform(0.05, 0.5, n_variants),
        np.exp(rng.uniform(np.log(min_maf), np.log(0.05), n_variants)),
    )
    p = np.where(rng.random(n_variants) < 0.5, maf, 1.0 - maf)
    if n_populations > 1 and fst > 0:
        a = p * (1 - fst) / fst
        b = (1 - p) * (1 - fst) / fst
        pop = rng.beta(a[:, None], b[:, None], size=(n_variants, n_populations))
    else:
        pop = np.repeat(p[:, None], n_populations, axis=1)
    rate = np.minimum(missing_rate * rng.gamma(2.0, 0.5, n_variants), 0.5)
    return Frequencies(p, pop, rate)


def sample_missing_factor(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    return rng.gamma(4.0, 0.25, n_samples)


def simulate_genotypes(
    ped: Pedigree, freq_pop: np.ndarray, miss_rate: np.ndarray, sample_factor: np.ndarray,
    rng: np.random.Generator, hemizygous: np.ndarray | None = None,
) -> np.ndarray:
    """Genotypes of the sampled individuals for a chunk of variants.

    Returns an int8 (n_sampled, n_chunk) Fortran array of ALLELE1 counts, -127 where missing.
    ``freq_pop`` is (n_chunk, K); ``miss_rate`` (n_chunk,); ``sample_factor`` (n_sampled,).
    ``hemizygous`` (bool per sampled individual: the males, for chromosome X): those carry one
    copy, the maternal haplotype, written 0/2 as plink stores a male's X call.  (An approximation
    of X inheritance: a father's X passes as his maternal haplotype.)
    """
    n_all, m = len(ped), freq_pop.shape[0]
    hap = np.empty((n_all, 2, m), dtype=bool)
    founders = np.flatnonzero(ped.father < 0)
    p = freq_pop.T[ped.population[founders]].astype(np.float32)  # (n_founders, m)
    hap[founders, 0] = rng.random((len(founders), m), dtype=np.float32) < p
    hap[founders, 1] = rng.random((len(founders), m), dtype=np.float32) < p
    for gen in range(1, int(ped.generation.max()) + 1):
        kids = np.flatnonzero(ped.generation == gen)
        for slot, parent in enumerate((ped.father[kids], ped.mother[kids])):
            pick = rng.random((len(kids), m), dtype=np.float32) < 0.5
            hap[kids, slot] = np.where(pick, hap[parent, 1], hap[parent, 0])
    sampled = np.flatnonzero(ped.sampled)
    geno = hap[sampled].sum(axis=1, dtype=np.int8)
    if hemizygous is not None:
        geno[hemizygous] = 2 * hap[sampled[hemizygous], 1].astype(np.int8)
    missing = rng.random(geno.shape, dtype=np.float32) < (sample_factor[:, None] * miss_rate[None, :])
    geno[missing] = MISSING_INT8
    return np.asfortranarray(geno)
