"""Progress bars and logging for long work.

Bars are drawn by tqdm on stderr when it is a terminal (``GWAS_GLMM_PROGRESS=1`` forces them,
``=0`` hides them).  When stderr is not a terminal (a SLURM or nohup log) long work logs a line
with its count, rate and ETA every ``GWAS_GLMM_PROGRESS_INTERVAL`` seconds (default 60) instead.
Logging goes to the terminal and, for CLI runs, is appended to ``<out>.log``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

LOGGER_NAME = "gwas_glmm"


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if name is None else f"{LOGGER_NAME}.{name}")


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", enabled: bool = True, **kwargs):
    """A tqdm bar, shown only on a terminal unless GWAS_GLMM_PROGRESS says otherwise; elsewhere
    (stderr redirected to a file) periodic log lines with rate and ETA.

    ``enabled=False`` hides both whatever the environment says.
    """
    flag = os.environ.get("GWAS_GLMM_PROGRESS", "").lower()
    disable = {"1": False, "true": False, "0": True, "false": True}.get(flag)
    if not enabled:
        disable = True
    if disable is None and not _is_terminal(sys.stderr):
        interval = float(os.environ.get("GWAS_GLMM_PROGRESS_INTERVAL", "60"))
        return _LogLines(iterable, total=total, desc=desc, unit=unit, mininterval=interval, maxinterval=max(interval, 1),
                         file=io.StringIO(), leave=True, **kwargs)
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
        leave=False, **kwargs,
    )


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LogLines(tqdm):
    """tqdm's counting, rate and ETA, shown as a log line every ``mininterval`` seconds (and a last
    one at the end of work that logged any), never as a redrawn bar."""

    _FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), {rate_fmt}, elapsed {elapsed}, ETA {remaining}"

    def __init__(self, *args, **kwargs):
        self._shown_at = time.monotonic()
        self._shown = False
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        now = time.monotonic()
        closing = self.disable or (self.total is not None and self.n >= self.total)
        if now - self._shown_at < self.mininterval and not (closing and self._shown):
            return True
        if self.n == getattr(self, "_last_n", None):
            return True
        self._shown_at, self._shown, self._last_n = now, True, self.n
        fmt = dict(self.format_dict, bar_format=self._FORMAT if self.total else "{desc}: {n_fmt} {unit}, {rate_fmt}, "
                   "elapsed {elapsed}")
        get_logger("progress").info("%s", self.format_meter(**fmt))
        return True


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
    """Send the package's log to stderr and, if given, append it to ``log_path``
    (:func:`add_log_file`)."""
    close_logging()
    logger = get_logger()
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    console = _StderrHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if log_path is not None:
        add_log_file(log_path)
    return logger


def add_log_file(log_path: str | os.PathLike) -> None:
    """Append the package's log to ``log_path`` (a rerun adds to the log, never erases it); raises
    OSError where the folder cannot be written."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    get_logger().addHandler(to_file)
