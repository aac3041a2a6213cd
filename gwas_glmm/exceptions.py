"""Exceptions raised by gwas_glmm.

Every error a user can cause with their input is a :class:`GwasGlmmError`; the CLI prints its
message as one line (no traceback) and exits non-zero.  Anything else is a bug.
"""

from __future__ import annotations


class GwasGlmmError(Exception):
    """Base class of the errors that come from the user's input or environment."""


class InputError(GwasGlmmError):
    """An input file or argument is missing, malformed or inconsistent."""


class AlignmentError(InputError):
    """Sample or variant identifiers do not line up across inputs."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped before reaching its tolerance."""
