"""Every worked application under docs/applications runs and writes its table and figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

APPS = Path(__file__).parent.parent / "docs" / "applications"
SCRIPTS = sorted(p for p in APPS.glob("*.py") if not p.name.startswith("_"))


def test_all_seven_are_here():
    assert len(SCRIPTS) == 7


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_application_runs(script, tmp_path):
    out = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    tables = list(tmp_path.glob("*.tsv"))
    figures = list(tmp_path.glob("*.png"))
    assert tables and figures
    assert len(pd.read_csv(tables[0], sep="\t")) >= 2
    assert figures[0].stat().st_size > 5000
