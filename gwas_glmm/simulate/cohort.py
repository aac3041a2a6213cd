"""Simulate a related, structured cohort and write it as files every GWAS tool reads.

Outputs for ``prefix``: ``.bed/.bim/.fam`` (PLINK 1), ``.pheno`` and ``.covar`` (``#FID IID ...``,
tab-separated, NA missing), ``.truth.tsv`` (causal variants and per-allele effects),
``.pairs.tsv`` (related sampled pairs with their expected relatedness) and ``.sim.json``
(parameters and realized values).  Same configuration and seed give byte-identical files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .._atomic import atomic_open
from .._progress import get_logger, progress
from ..io.plink import VariantTable
from .config import SimulationConfig
from .genotypes import (
    sample_missing_factor,
    simulate_frequencies,
    simulate_genotypes,
    simulate_layout,
    simulate_x_layout,
)
from .pedigree import EXPECTED_RELATEDNESS, Pedigree, simulate_pedigree
from .traits import accumulate, draw_trait_models, finish, genetic_value, make_phenotype

CHUNK = 512  # variants generated at a time; fixed so that output does not depend on settings
log = get_logger("simulate")


@dataclass(frozen=True)
class TraitSummary:
    name: str
    kind: str
    genetic_variance: float  # target: h2 (quantitative/binary liability) or log-rate variance
    realized_genetic_variance: float
    realized_h2: float | None  # var(g) / var(g + e) for quantitative and liability traits
    prevalence: float | None
    n_missing: int


@dataclass(frozen=True)
class SimulatedCohort:
    """What :func:`simulate_cohort` wrote, and the realized truth."""

    prefix: Path
    config: SimulationConfig
    n_samples: int
    n_variants: int
    n_related_pairs: int
    traits: tuple[TraitSummary, ...]
    files: tuple[Path, ...] = field(default=())

    @property
    def bfile(self) -> Path:
        return self.prefix

    @property
    def pheno(self) -> Path:
        return Path(f"{self.prefix}.pheno")

    @property
    def covar(self) -> Path:
        return Path(f"{self.prefix}.covar")

    def summary_lines(self) -> list[str]:
        out = [
            f"simulated {self.n_samples} samples x {self.n_variants} variants "
            f"({self.config.n_populations} populations, Fst {self.config.fst}, "
            f"{self.n_related_pairs} related pairs), seed {self.config.seed}",
        ]
        for t in self.traits:
            extra = f", prevalence {t.prevalence:.3f}" if t.prevalence is not None else ""
            h2 = f", realized h2 {t.realized_h2:.3f}" if t.realized_h2 is not None else ""
            out.append(f"  trait {t.name} ({t.kind}): genetic variance {t.realized_genetic_variance:.3f}{h2}{extra}")
        out.append("files written:")
        out += [f"  {p}" for p in self.files]
        return out


def _trait_specs(cfg: SimulationConfig) -> list[tuple[str, str, float, float | None]]:
    specs = [("qt", "quantitative", cfg.h2, None)]
    specs += [(f"bt{k + 1}", "binary", cfg.h2, prev) for k, prev in enumerate(cfg.prevalences)]
    specs.append(("count", "count", cfg.count_genetic_variance, None))
    return specs


def _parent_ids(ped: Pedigree, parent: np.ndarray) -> np.ndarray:
    out = np.full(len(parent), "0", dtype=object)
    has = parent >= 0
    ok = has.copy()
    ok[has] = ped.sampled[parent[has]]
    out[ok] = ped.iid[parent[ok]]
    return out


def simulate_cohort(prefix: str | os.PathLike, config: SimulationConfig | None = None,
                    *, show_progress: bool = True) -> SimulatedCohort:
    """Simulate and write a cohort under ``prefix`` (its folder is created)."""
    from bed_reader import create_bed

    cfg = config or SimulationConfig()
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    streams = np.random.SeedSequence(cfg.seed).spawn(7)  # the 7th (chromosome X) leaves the first 6 as they were
    rng_ped, rng_layout, rng_freq, rng_traits, rng_pheno = (np.random.default_rng(s) for s in streams[:5])
    chunk_seeds = streams[5].spawn((cfg.n_variants + CHUNK - 1) // CHUNK)

    ped = simulate_pedigree(cfg.n_samples, cfg.n_populations, cfg.family_fraction, rng_ped)
    sampled = np.flatnonzero(ped.sampled)
    layout = simulate_layout(cfg.n_variants, rng_layout)
    freqs = simulate_frequencies(cfg.n_variants, cfg.n_populations, cfg.fst, cfg.min_maf, cfg.missing_rate, rng_freq)
    rng_x = np.random.default_rng(streams[6])
    x_layout = simulate_x_layout(cfg.n_x_variants, rng_x)
    x_freqs = simulate_frequencies(cfg.n_x_variants, cfg.n_populations, cfg.fst, cfg.min_maf, cfg.missing_rate, rng_x)
    full = VariantTable(*(np.concatenate([getattr(layout, f), getattr(x_layout, f)])
                          for f in ("chrom", "id", "cm", "pos", "allele1", "allele0")))
    n_total = cfg.n_variants + cfg.n_x_variants
    miss_factor = sample_missing_factor(len(sampled), rng_freq)
    models = draw_trait_models(
        _trait_specs(cfg), freqs.ancestral, cfg.n_polygenic, cfg.n_large, cfg.large_fraction,
        len(sampled), rng_traits,
    )
    properties = {
        "fid": ped.fid[sampled], "iid": ped.iid[sampled],
        "father": _parent_ids(ped, ped.father)[sampled], "mother": _parent_ids(ped, ped.mother)[sampled],
        "sex": ped.sex[sampled].astype(np.int32), "pheno": np.full(len(sampled), "-9"),
        "chromosome": full.chrom, "sid": full.id, "cm_position": full.cm,
        "bp_position": full.pos, "allele_1": full.allele1, "allele_2": full.allele0,
    }
    log.info("simulating %d samples x %d variants into %s.bed", len(sampled), n_total, prefix)
    with create_bed(f"{prefix}.bed", len(sampled), n_total, properties=properties, num_threads=1) as writer:
        bar = progress(total=n_total, desc="simulate", unit="var", enabled=show_progress)
        with bar:
            for k, start in enumerate(range(0, cfg.n_variants, CHUNK)):
                stop = min(start + CHUNK, cfg.n_variants)
                geno = simulate_genotypes(
                    ped, freqs.population[start:stop], freqs.missing_rate[start:stop], miss_factor,
                    np.random.default_rng(chunk_seeds[k]),
                )
                accumulate(models, start, geno)
                for j in range(geno.shape[1]):
                    writer.write(geno[:, j])
                bar.update(stop - start)
            males = ped.sex[sampled] == 1
            for start in range(0, cfg.n_x_variants, CHUNK):  # not causal for the traits
                stop = min(start + CHUNK, cfg.n_x_variants)
                geno = simulate_genotypes(ped, x_freqs.population[start:stop], x_freqs.missing_rate[start:stop],
                                          miss_factor, rng_x, hemizygous=males)
                for j in range(geno.shape[1]):
                    writer.write(geno[:, j])
                bar.update(stop - start)
    finish(models, cfg.large_fraction)
    return _write_tables(prefix, cfg, ped, sampled, layout, models, rng_pheno, n_total)


def _write_tables(prefix, cfg, ped, sampled, layout, models, rng, n_total: int) -> SimulatedCohort:
    n = len(sampled)
    age = np.round(rng.uniform(20, 80, n), 1)
    sex = ped.sex[sampled].astype(np.int64)
    pop = ped.population[sampled]
    followup = np.round(rng.uniform(0.5, 5.0, n), 3)
    summaries, columns = [], {}
    effects = {}
    for t in models:
        pop_effect = rng.normal(0.0, 0.3, cfg.n_populations)
        cov_effect = 0.02 * (age - 50.0) + 0.2 * (sex == 2) + pop_effect[pop]
        effects[t.name] = {"age": 0.02, "sex_female": 0.2, "population": pop_effect.round(6).tolist()}
        y = make_phenotype(t, cov_effect, followup, cfg.count_base_rate, cfg.h2, rng)
        g = genetic_value(t)
        realized_h2 = None  # for binary traits: realized var(g) against the expected var(e)
        if t.kind != "count":
            e_var = np.var(y - cov_effect - g) if t.kind == "quantitative" else 1.0 - cfg.h2
            realized_h2 = float(g.var() / (g.var() + e_var))
        missing = rng.random(n) < cfg.phenotype_missing
        y[missing] = np.nan
        columns[t.name] = y
        prevalence = float(np.nanmean(y)) if t.kind == "binary" else None
        summaries.append(TraitSummary(t.name, t.kind, t.genetic_variance, float(g.var()), realized_h2,
                                      prevalence, int(missing.sum())))
    ids = [f"{f}\t{i}" for f, i in zip(ped.fid[sampled], ped.iid[sampled])]

    def fmt(name, v):
        if np.isnan(v):
            return "NA"
        return f"{v:.6g}" if name == "qt" else str(int(v))

    with atomic_open(f"{prefix}.pheno") as fh:
        fh.write("#FID\tIID\t" + "\t".join(columns) + "\n")
        for r, key in enumerate(ids):
            fh.write(key + "\t" + "\t".join(fmt(c, columns[c][r]) for c in columns) + "\n")
    with atomic_open(f"{prefix}.covar") as fh:
        fh.write("#FID\tIID\tage\tsex\tpop\tfollowup\n")
        for r, key in enumerate(ids):
            fh.write(f"{key}\t{age[r]:.1f}\t{sex[r]}\tPOP{pop[r] + 1}\t{followup[r]:.3f}\n")
    with atomic_open(f"{prefix}.truth.tsv") as fh:
        fh.write("TRAIT\tID\tCHROM\tGENPOS\tALLELE1\tA1FREQ\tBETA\tKIND\n")
        for t in models:
            for kind, pos, beta, freq in (("large", t.large, t.beta_large, t.a1freq_large),
                                          ("polygenic", t.polygenic, t.beta_polygenic, t.a1freq_polygenic)):
                for j, b, f in zip(pos, beta, freq):
                    if b != 0:
                        fh.write(f"{t.name}\t{layout.id[j]}\t{layout.chrom[j]}\t{layout.pos[j]}\t"
                                 f"{layout.allele1[j]}\t{f:.8g}\t{b:.10g}\t{kind}\n")
    with atomic_open(f"{prefix}.pairs.tsv") as fh:
        fh.write("FID\tIID1\tIID2\tRELATION\tEXPECTED_RELATEDNESS\n")
        for a, b, kind in ped.pairs:
            fh.write(f"{ped.fid[a]}\t{ped.iid[a]}\t{ped.iid[b]}\t{kind}\t{EXPECTED_RELATEDNESS[kind]}\n")
    files = tuple(Path(f"{prefix}{ext}") for ext in
                  (".bed", ".bim", ".fam", ".pheno", ".covar", ".truth.tsv", ".pairs.tsv", ".sim.json"))
    cohort = SimulatedCohort(prefix, cfg, n, n_total, len(ped.pairs), tuple(summaries), files)
    record = {
        "gwas_glmm_version": __version__, "config": asdict(cfg),
        "traits": [asdict(s) for s in summaries], "covariate_effects": effects,
        "n_related_pairs": len(ped.pairs),
        "phenotype_model": "see gwas_glmm.simulate.traits: y = covariate effects + g + e",
    }
    with atomic_open(f"{prefix}.sim.json") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    return cohort
