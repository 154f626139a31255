"""Run amqtt in this process's place, with the interpreter of its own venv (see the package docstring)."""

from __future__ import annotations

import os
import sys

from childproc.parent_death import die_with_parent
from tests.servers.amqtt_broker import BROKER_DIR, VENV_PYTHON

if __name__ == "__main__":
    if "--die-with-parent" in sys.argv[1:]:
        die_with_parent()  # the parent-death signal survives exec
    if not VENV_PYTHON.exists():
        sys.exit("the amqtt venv is missing: call tests.servers.amqtt_broker.broker_ready() first")
    os.chdir(BROKER_DIR)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(BROKER_DIR / "broker.py")])
