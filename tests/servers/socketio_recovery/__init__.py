"""A real Socket.IO server for the continuity tests: socket.io 4 (Node.js), numbered events to each user's room.

`python -m tests.servers.socketio_recovery [--recovery] [--interval-ms N] [--die-with-parent]`
replaces itself with `node server.mjs` (same pid, so `childproc.ready` reads its readiness
line and stops it). `server_ready()` installs socket.io with `npm ci` from the lock file when
it is missing, and says why it cannot when Node.js or npm is not there, so a test can skip.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.installs import npm_ci

SERVER_DIR = Path(__file__).resolve().parent


def server_ready() -> str | None:
    """None when the server can start (installing its packages first if needed), else why it cannot."""
    return npm_ci(SERVER_DIR, ("socket.io",), "the socket.io server")
