"""Provenance recorded in every artifact: versions, inputs, parameters, time, peak memory."""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import __version__


def _file_info(path) -> dict:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return {"path": str(p)}
    return {"path": str(p.resolve()), "bytes": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(timespec="seconds")}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def provenance(step: str, *, inputs: dict | None = None, parameters: dict | None = None,
               started: float | None = None) -> dict:
    """A JSON-serialisable record of how an artifact was made."""
    import numpy

    record = {
        "software": "gwas_glmm", "version": __version__, "step": step,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(), "numpy": numpy.__version__, "platform": platform.platform(),
        "inputs": {k: _file_info(v) for k, v in (inputs or {}).items()},
        "parameters": parameters or {},
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    if started is not None:
        record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def to_json(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)
