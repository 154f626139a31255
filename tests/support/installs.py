"""Installing what a test server needs, once, even when test processes run in parallel (pytest -n)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

NPM_TIMEOUT_S = 300.0


def npm_ci(directory: Path, modules: Iterable[str], what: str) -> str | None:
    """`npm ci` in `directory` (from its lock file) unless `modules` are there; None, or why it cannot.

    A lock file beside the package serialises installs: a second test process waits for the
    first one's install and then finds the modules there.
    """
    wanted = tuple(modules)

    def installed() -> bool:
        return all((directory / "node_modules" / name).is_dir() for name in wanted)

    if shutil.which("node") is None:
        return f"node not found on PATH: no {what} to test against"
    if installed():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return f"npm not found: cannot install {what}"
    with open(directory / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if installed():
            return None
        try:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=directory,
                check=True,
                capture_output=True,
                timeout=NPM_TIMEOUT_S,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            return f"npm could not install {what} ({type(error).__name__})"
    return None
