"""Pedigrees for simulated cohorts: unrelated founders plus nuclear and three-generation families.

Family kinds (every member of a family comes from one population):

* nuclear: two sampled parents and 2-3 sampled children (parent-offspring and full-sibling pairs);
* extended: two unsampled grandparents, their two sampled children (full siblings), each with an
  unsampled spouse and two sampled children, giving parent-offspring, full-sibling, avuncular and
  first-cousin pairs.

Expected genomic relationship (twice the kinship coefficient) of each pair kind is in
:data:`EXPECTED_RELATEDNESS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXPECTED_RELATEDNESS = {
    "parent-offspring": 0.5,
    "full-sibling": 0.5,
    "avuncular": 0.25,
    "first-cousin": 0.125,
}


@dataclass(frozen=True)
class Pedigree:
    """Everyone simulated (sampled or not), in an order where parents precede children."""

    fid: np.ndarray
    iid: np.ndarray
    father: np.ndarray  # index of the father, -1 for founders
    mother: np.ndarray
    sex: np.ndarray  # 1 male, 2 female
    population: np.ndarray  # population index
    generation: np.ndarray
    sampled: np.ndarray  # bool: written to the .fam
    pairs: tuple[tuple[int, int, str], ...]  # related sampled pairs (indices) and their kind

    def __len__(self) -> int:
        return len(self.iid)


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.rows: list[list] = []  # fid, iid, father, mother, sex, pop, generation, sampled
        self.pairs: list[tuple[int, int, str]] = []

    n_sampled = 0

    def add(self, fid, iid, father, mother, sex, pop, gen, sampled) -> int:
        self.rows.append([fid, iid, father, mother, sex, pop, gen, sampled])
        self.n_sampled += bool(sampled)
        return len(self.rows) - 1

    def children(self, fid, father, mother, pop, gen, count, start) -> list[int]:
        kids = [
            self.add(fid, f"{fid}_{start + k}", father, mother, int(self.rng.integers(1, 3)), pop, gen, True)
            for k in range(count)
        ]
        self.pairs += [(a, b, "full-sibling") for i, a in enumerate(kids) for b in kids[i + 1 :]]
        for parent in (father, mother):
            if self.rows[parent][7]:
                self.pairs += [(parent, kid, "parent-offspring") for kid in kids]
        return kids

    def nuclear(self, fid, pop) -> None:
        dad = self.add(fid, f"{fid}_1", -1, -1, 1, pop, 0, True)
        mum = self.add(fid, f"{fid}_2", -1, -1, 2, pop, 0, True)
        self.children(fid, dad, mum, pop, 1, int(self.rng.integers(2, 4)), 3)

    def extended(self, fid, pop) -> None:
        gpa = self.add(fid, f"{fid}_g1", -1, -1, 1, pop, 0, False)
        gma = self.add(fid, f"{fid}_g2", -1, -1, 2, pop, 0, False)
        c1, c2 = self.children(fid, gpa, gma, pop, 1, 2, 1)
        self.rows[c1][4], self.rows[c2][4] = 1, 2
        sp1 = self.add(fid, f"{fid}_s1", -1, -1, 2, pop, 0, False)
        sp2 = self.add(fid, f"{fid}_s2", -1, -1, 1, pop, 0, False)
        kids1 = self.children(fid, c1, sp1, pop, 2, 2, 3)
        kids2 = self.children(fid, sp2, c2, pop, 2, 2, 5)
        self.pairs += [(c1, k, "avuncular") for k in kids2] + [(c2, k, "avuncular") for k in kids1]
        self.pairs += [(a, b, "first-cousin") for a in kids1 for b in kids2]


def simulate_pedigree(
    n_samples: int, n_populations: int, family_fraction: float, rng: np.random.Generator
) -> Pedigree:
    """A pedigree with exactly ``n_samples`` sampled individuals, about ``family_fraction`` of
    them in families, the rest unrelated founders; populations drawn uniformly per family."""
    b = _Builder(rng)
    target = int(round(family_fraction * n_samples))
    n_fam = 0
    while b.n_sampled < target:  # a running count: summing the rows each time was O(n^2) (minutes at 100,000)
        n_fam += 1
        fid = f"FAM{n_fam:05d}"
        pop = int(rng.integers(n_populations))
        if rng.random() < 0.5:
            b.nuclear(fid, pop)
        else:
            b.extended(fid, pop)
    # the last family may overshoot: unsample its youngest members (and their pairs) to fit
    excess = sum(r[7] for r in b.rows) - n_samples
    for idx in range(len(b.rows) - 1, -1, -1):
        if excess <= 0:
            break
        if b.rows[idx][7]:
            b.rows[idx][7] = False
            excess -= 1
    n_unrelated = n_samples - sum(r[7] for r in b.rows)
    for k in range(n_unrelated):
        iid = f"IND{k + 1:06d}"
        b.add(iid, iid, -1, -1, int(rng.integers(1, 3)), int(rng.integers(n_populations)), 0, True)
    cols = list(zip(*b.rows))
    sampled = np.array(cols[7], dtype=bool)
    pairs = tuple(p for p in b.pairs if sampled[p[0]] and sampled[p[1]])
    ped = Pedigree(
        fid=np.array(cols[0], dtype=object), iid=np.array(cols[1], dtype=object),
        father=np.array(cols[2], dtype=np.int64), mother=np.array(cols[3], dtype=np.int64),
        sex=np.array(cols[4], dtype=np.int8), population=np.array(cols[5], dtype=np.int64),
        generation=np.array(cols[6], dtype=np.int64), sampled=sampled, pairs=pairs,
    )
    assert _parents_first(ped)
    return ped


def _parents_first(ped: Pedigree) -> bool:
    idx = np.arange(len(ped))
    has = ped.father >= 0
    return bool(np.all(ped.father[has] < idx[has]) and np.all(ped.mother[has] < idx[has]))
