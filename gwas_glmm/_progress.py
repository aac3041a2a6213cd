"""Progress bars and logging for long work.

Bars are drawn by tqdm on stderr when it is a terminal (``GWAS_GLMM_PROGRESS=1`` forces them,
``=0`` hides them); logging goes to the terminal and, for CLI runs, to ``<out>.log``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

LOGGER_NAME = "gwas_glmm"


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if name is None else f"{LOGGER_NAME}.{name}")


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", enabled: bool = True, **kwargs):
    """A tqdm bar, shown only on a terminal unless GWAS_GLMM_PROGRESS says otherwise.

    ``enabled=False`` hides it whatever the environment says.
    """
    flag = os.environ.get("GWAS_GLMM_PROGRESS", "").lower()
    disable = {"1": False, "true": False, "0": True, "false": True}.get(flag)
    if not enabled:
        disable = True
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
        leave=False, **kwargs,
    )


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def close_logging() -> None:
    """Detach and close the handlers installed by :func:`setup_logging`."""
    logger = get_logger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def setup_logging(log_path: str | os.PathLike | None = None, verbose: bool = False) -> logging.Logger:
    """Send the package's log to stderr and, if given, to ``log_path`` (overwritten)."""
    close_logging()
    logger = get_logger()
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    console = _StderrHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_path, mode="w", encoding="utf-8")
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(to_file)
    return logger
