"""Run the aedes broker in this process's place (see the package docstring)."""

from __future__ import annotations

import os
import shutil
import sys

from childproc.parent_death import die_with_parent
from tests.servers.mqtt_broker import BROKER_DIR

if __name__ == "__main__":
    if "--die-with-parent" in sys.argv[1:]:
        die_with_parent()  # the parent-death signal survives exec
    node = shutil.which("node")
    if node is None:
        sys.exit("node not found on PATH")
    os.chdir(BROKER_DIR)
    os.execv(node, [node, str(BROKER_DIR / "broker.mjs")])
