"""A real MQTT broker from PyPI for the tests: amqtt (Python asyncio), WebSocket listener on 127.0.0.1.

amqtt pins a websockets release the pack does not use, so it gets a virtual environment of its
own, `.venv` beside this file, made by `broker_ready()` from `requirements.txt` (amqtt and its
dependencies, pinned). `python -m tests.servers.amqtt_broker` replaces itself with that venv's
Python running `broker.py` (same pid, so `childproc.ready` reads its readiness line and stops it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BROKER_DIR = Path(__file__).resolve().parent
VENV_DIR = BROKER_DIR / ".venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
INSTALL_TIMEOUT_S = 300.0


def broker_ready() -> str | None:
    """None when the broker can start (making its venv first if needed), else why it cannot."""
    marker = VENV_DIR / "installed.txt"
    wanted = (BROKER_DIR / "requirements.txt").read_text()
    if VENV_PYTHON.exists() and marker.exists() and marker.read_text() == wanted:
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], check=True, capture_output=True)
        subprocess.run(
            [str(VENV_PYTHON), "-m", "pip", "install", "-q", "-r", str(BROKER_DIR / "requirements.txt")],
            check=True,
            capture_output=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        return f"pip could not install the amqtt MQTT broker ({type(error).__name__})"
    marker.write_text(wanted)
    return None
