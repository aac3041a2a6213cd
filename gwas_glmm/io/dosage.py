"""What the dosage filesets (.pgen: :mod:`.pgen`, .bgen: :mod:`.bgen`) share: each reader fills
(variants, file samples) float32 dosages of ALLELE1 with -9 for a missing call (``_rows``),
and the reads every stage uses are built on it here, in the package's one block orientation
(:mod:`.plink`).  One numba pass (``genotype/_decode_numba.impute_dosages``) gathers the
analysis samples, counts calls, sums dosages and their squares (INFO) and mean-imputes."""

from __future__ import annotations

import threading

import numpy as np

from .._validation import check_index
from .plink import GenotypeFileset


def _positions(name: str, index, size: int) -> np.ndarray:
    """Integer positions from what :meth:`DosageFileset.read` accepts: None, a slice, a mask, integers."""
    return np.arange(size)[index] if isinstance(index, slice) else check_index(name, index, size)


class DosageFileset(GenotypeFileset):
    """Base of the dosage readers: subclasses set ``samples``, ``variants``, the paths and
    ``_local`` (a ``threading.local``: each thread reads through a reader of its own) and
    implement ``_rows``."""

    dosages = True
    _local: threading.local

    def _rows(self, variants: np.ndarray) -> np.ndarray:
        """(variants, file samples) float32 dosages of ``variants``, -9 where missing; a buffer of
        this thread's (:meth:`_row_buffer`), valid until its next call."""
        raise NotImplementedError

    def _row_buffer(self, n_variants: int, name: str = "rows") -> np.ndarray:
        """This thread's (n_variants, file samples) float32 buffer ``name``, grown as needed."""
        size = n_variants * self.n_samples
        buf = getattr(self._local, name, None)
        if buf is None or buf.size < size:
            buf = np.empty(size, np.float32)
            setattr(self._local, name, buf)
        return buf[:size].reshape(n_variants, self.n_samples)

    def read(self, samples=None, variants=None) -> np.ndarray:
        """Dosages of ALLELE1 as a (samples, variants) float32 Fortran array, NaN where missing."""
        variants = _positions("variants", variants, self.n_variants)
        rows = self._rows(variants)
        if samples is None:
            out = rows.copy()
        else:
            out = rows[:, _positions("samples", samples, self.n_samples)]
        out[out < 0] = np.nan
        return out.T

    def _decode_imputed(self, variants: np.ndarray, gather: np.ndarray, dosages: np.ndarray, mask: np.ndarray):
        """The reader's dosages of ``variants``, gathered, counted and mean-imputed; the stats also
        hold the squares that give INFO."""
        from ..genotype._decode_numba import impute_dosages
        from ..genotype.stats import VariantStats

        n_obs, total, squares = impute_dosages(self._rows(variants), gather, dosages, mask)
        return VariantStats(n_obs, total, dosages.shape[1], squares=squares)
