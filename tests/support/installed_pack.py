"""The pack as a user installs it: `pip install` of a clean clone (the repository at HEAD) into a fresh venv.

A real, non-editable install: nothing of this checkout is on the venv's path, so what runs from it
is what the package holds. Made once per test session (the `installed_pack` fixture); pip's cache
makes it take seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.locust_process import ROOT

INSTALL_TIMEOUT_S = 600  # a cold pip cache downloads and builds everything


@dataclass(frozen=True)
class InstalledPack:
    """A venv with the pack installed from a clean clone."""

    venv: Path  # the venv's folder
    clone: Path  # the clone it was installed from

    @property
    def bin(self) -> Path:
        """The venv's bin/ folder (python, locust, flap)."""
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        """An environment that runs the venv's commands with nothing of this checkout: no PYTHONPATH, no LOCUST_*."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("LOCUST_") and name not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env


def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def install_clean_clone(folder: Path) -> InstalledPack:
    """`git clone` this repository at HEAD into `folder`, make a venv and `pip install` the clone into it."""
    clone = folder / "clone"
    venv = folder / "venv"
    _run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)])
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(clone)])
    return InstalledPack(venv=venv, clone=clone)
