"""Lint, formatting and types, checked in CI like the tests (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "mypy": [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")],
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_static_check_passes(name: str) -> None:
    """The tool finds nothing (it is pinned in requirements-dev.txt)."""
    done = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}{done.stderr[-1000:]}"
