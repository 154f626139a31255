"""The embedded default: the bundled reference server, started when --host is not given.

It runs as its own process (never inside Locust's gevent process), on a free
loopback port, and dies with Locust: stopped at quit, at exit, and by the kernel
(parent-death signal) if Locust is killed outright.
"""

from __future__ import annotations

import atexit
from typing import Protocol

from pack.settings import PackConfig

REFSERVER_AGENTS_METRIC = "refserver_active_agents"

# What each --ref-server-fault mode passes to the bundled server: sized so the
# default run (10 users x 20 cycles) shows the bug in the verdict.
FAULT_ARGS: dict[str, list[str]] = {
    "leak-memory": ["--leak-memory-kb", "128"],
    "leak-agents": ["--leak-agents-on-drop"],
    "leak-fds": ["--leak-fds"],
    "reject-503": ["--reject-pct", "20"],
    "slow-handshake": ["--slow-handshake-ms", "200"],
    "block-loop": ["--block-loop-ms", "30"],
    "lose-on-resume": ["--lose-on-resume"],
    "ignore-pingreq": ["--ignore-pingreq"],
}


class EmbeddedServerError(Exception):
    """The bundled server did not start; the message is one line."""


class EmbeddedServer(Protocol):
    """A running bundled server, as `refserver.launch` returns it."""

    port: int
    pid: int

    @property
    def url(self) -> str: ...

    @property
    def metrics_url(self) -> str: ...

    def stop(self) -> object: ...


def server_args(config: PackConfig) -> list[str]:
    """Command-line arguments of the bundled server for this config."""
    args = ["--host", "127.0.0.1", "--port", "0"]
    protocol = config.ref_server.protocol
    if protocol == "echo" and config.client.conversation.protocol in ("socketio", "mqtt"):
        protocol = config.client.conversation.protocol  # --ws-protocol socketio|mqtt: the bundled server speaks it too
    if protocol != "echo":
        args += ["--protocol", protocol]
    for mode in config.ref_server.faults:
        args += FAULT_ARGS[mode]
    return args


def start(config: PackConfig) -> EmbeddedServer:
    """Start the bundled server and wait until it is ready."""
    from refserver.launch import start_refserver

    # The token goes by environment (argv is visible in ps); None removes an inherited one.
    env: dict[str, str | None] = {"REFSERVER_AUTH_TOKEN": config.client.auth_token or None}
    try:
        server = start_refserver(server_args(config), env=env, timeout_s=15)
    except Exception as error:  # any failure to start is a configuration problem for the user
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(error).__name__
        raise EmbeddedServerError(f"the bundled reference server did not start: {reason}") from None
    atexit.register(server.stop)
    return server


def describe(server: EmbeddedServer) -> str:
    """One line for the log."""
    return f"pid {server.pid}, {server.url}"
