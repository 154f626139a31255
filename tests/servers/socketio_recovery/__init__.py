"""A real Socket.IO server for the continuity tests: socket.io 4 (Node.js), numbered events to each user's room.

`python -m tests.servers.socketio_recovery [--recovery] [--interval-ms N] [--die-with-parent]`
replaces itself with `node server.mjs` (same pid, so `childproc.ready` reads its readiness
line and stops it). `server_ready()` installs socket.io with `npm ci` from the lock file when
it is missing, and says why it cannot when Node.js or npm is not there, so a test can skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SERVER_DIR = Path(__file__).resolve().parent
NPM_TIMEOUT_S = 300.0


def server_ready() -> str | None:
    """None when the server can start (installing its packages first if needed), else why it cannot."""
    if shutil.which("node") is None:
        return "node not found on PATH: no socket.io server to test against"
    if (SERVER_DIR / "node_modules" / "socket.io").is_dir():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found: cannot install socket.io"
    try:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=SERVER_DIR,
            check=True,
            capture_output=True,
            timeout=NPM_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return f"npm could not install socket.io ({type(error).__name__})"
    return None
