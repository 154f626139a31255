"""Run the socket.io server in this process's place (see the package docstring)."""

from __future__ import annotations

import os
import shutil
import sys

from childproc.parent_death import die_with_parent
from tests.servers.socketio_recovery import SERVER_DIR

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--die-with-parent" in args:
        die_with_parent()  # the parent-death signal survives exec
        args.remove("--die-with-parent")
    node = shutil.which("node")
    if node is None:
        sys.exit("node not found on PATH")
    os.chdir(SERVER_DIR)
    os.execv(node, [node, str(SERVER_DIR / "server.mjs"), *args])
