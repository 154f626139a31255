"""A real MQTT broker for the tests: aedes (Node.js, MQTT 3.1.1) behind a WebSocket listener on 127.0.0.1.

`python -m tests.servers.mqtt_broker [--die-with-parent]` replaces itself with `node broker.mjs`
(same pid, so `childproc.ready` reads its readiness line and stops it). `broker_ready()` installs
aedes and ws with `npm ci` from the lock file when they are missing, and says why it cannot
when Node.js or npm is not there, so a test can skip.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.installs import npm_ci
from tests.support.unavailable import unavailable

BROKER_DIR = Path(__file__).resolve().parent
USER_ENV = "MQTT_BROKER_USER"  # credentials come from the environment, never argv (it shows in `ps`)
PASSWORD_ENV = "MQTT_BROKER_PASSWORD"


def broker_ready() -> str | None:
    """None when the broker can start (installing its packages first if needed), else why it cannot."""
    return npm_ci(BROKER_DIR, ("aedes", "ws"), "the aedes MQTT broker")


def start_broker(start_app_server):  # type: ignore[no-untyped-def]
    """The broker, started by the `start_app_server` fixture; unavailable (skip, or fail under CI) without Node."""
    why_not = broker_ready()
    if why_not is not None:
        unavailable(why_not)
    return start_app_server("mqtt_broker")
