"""Chromosome names in one spelling (gwas_glmm.io.chrom), and --chr in plink2's list syntax."""

from __future__ import annotations

import numpy as np
import pytest

from gwas_glmm.exceptions import InputError
from gwas_glmm.io.chrom import chrom_name, is_autosomal, normalise_chroms, parse_chrom_list


@pytest.mark.parametrize(("given", "expected"), [
    ("1", "1"), ("chr1", "1"), ("CHR01", "1"), ("01", "1"), ("22", "22"), ("chr22", "22"),
    ("X", "X"), ("x", "X"), ("chrX", "X"), ("23", "X"), ("Y", "Y"), ("24", "Y"), ("chrY", "Y"),
    ("XY", "XY"), ("25", "XY"), ("PAR1", "XY"), ("chrPAR2", "XY"), ("MT", "MT"), ("26", "MT"), ("M", "MT"),
    ("chrM", "MT"), ("chrMT", "MT"), ("scaffold_7", "scaffold_7"), ("chrUn_gl000220", "Un_gl000220"), (7, "7"),
])
def test_every_spelling_maps_to_plink2s_names(given, expected):
    assert chrom_name(given) == expected


def test_normalise_is_elementwise_and_autosomes_exclude_x_y_mt():
    names = normalise_chroms(np.array(["chr1", "1", "23", "chrX", "25", "MT", "Y", "2"], dtype=object))
    assert names.tolist() == ["1", "1", "X", "X", "XY", "MT", "Y", "2"]
    assert is_autosomal(names).tolist() == [True, True, False, False, True, False, False, True]


def test_chr_lists_take_commas_and_ranges():
    assert parse_chrom_list(["1-3,chr5", "X", "22-23"]) == ["1", "2", "3", "5", "X", "22"]
    assert parse_chrom_list(["chr20-chr22"]) == ["20", "21", "22"]
    with pytest.raises(InputError, match="backwards"):
        parse_chrom_list(["5-2"])
    with pytest.raises(InputError, match="range"):
        parse_chrom_list(["1-scaffold"])
