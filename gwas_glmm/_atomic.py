"""Write files under a temporary name and rename them when complete.

Nothing half-written ever carries its final name: a killed process leaves at most a
``.tmp-*`` file next to the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing; it becomes ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:  # what: e.g. "a scan with --out X"
    """Hold an exclusive lock on ``path`` (created if needed) for the block, or raise at once if
    another process (or another run in this one) holds it: two runs writing the same outputs
    would overwrite each other's checkpoints.  The operating system drops the lock when the
    holder dies, so a killed run never leaves a stale lock; the holder removes the file when done."""
    import fcntl

    from .exceptions import InputError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise InputError(f"{what} is already running ({holder}; lock {path}); wait for it to finish or "
                             "choose another --out") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"process {os.getpid()} on {os.uname().nodename}")
            fh.flush()
            yield
        finally:
            path.unlink(missing_ok=True)  # still held: no other run can have taken it
    finally:
        fh.close()
