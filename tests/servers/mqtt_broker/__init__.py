"""A real MQTT broker for the tests: aedes (Node.js, MQTT 3.1.1) behind a WebSocket listener on 127.0.0.1.

`python -m tests.servers.mqtt_broker [--die-with-parent]` replaces itself with `node broker.mjs`
(same pid, so `childproc.ready` reads its readiness line and stops it). `broker_ready()` installs
aedes and ws with `npm ci` from the lock file when they are missing, and says why it cannot
when Node.js or npm is not there, so a test can skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BROKER_DIR = Path(__file__).resolve().parent
USER_ENV = "MQTT_BROKER_USER"  # credentials come from the environment, never argv (it shows in `ps`)
PASSWORD_ENV = "MQTT_BROKER_PASSWORD"
NPM_TIMEOUT_S = 300.0


def broker_ready() -> str | None:
    """None when the broker can start (installing its packages first if needed), else why it cannot."""
    if shutil.which("node") is None:
        return "node not found on PATH: no MQTT broker to test against"
    if all((BROKER_DIR / "node_modules" / name).is_dir() for name in ("aedes", "ws")):
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found: cannot install the aedes MQTT broker"
    try:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=BROKER_DIR,
            check=True,
            capture_output=True,
            timeout=NPM_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return f"npm could not install the aedes MQTT broker ({type(error).__name__})"
    return None
