"""Real application-protocol servers for the tests, each started as a child process on 127.0.0.1.

Each module here is runnable as ``python -m tests.servers.<name>``: it binds an ephemeral
port, prints ``app-server ready port=<PORT> pid=<PID>`` and serves WebSocket sessions and
Prometheus text at ``GET /metrics`` on that one port until SIGTERM. ``--fault NAME`` (repeatable)
switches on a real bug. Start one with `start_app_server` (or the ``start_app_server``
fixture of tests/conftest.py, which stops it at teardown).

This module stays free of pytest, gevent and the server frameworks: the servers import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from childproc import ready
from childproc.ready import ReadyProcess
from childproc.ready_line import ReadyLine

READY_LINE = ReadyLine("app-server")
# The variable the servers read a required token from (never argv: it shows in `ps`).
AUTH_TOKEN_ENV = "APP_AUTH_TOKEN"

# Server name -> the path of its WebSocket endpoint (Socket.IO clients add /socket.io/ themselves).
WS_PATHS = {
    "agent_chat": "/ws",
    "graphql_server": "/graphql",
    "close_after_101": "/ws",
    "heartbeat": "/ws",
    "django_channels": "/ws/echo/",
    "socketio_server": "/",
    "reaper_echo": "/ws",
    "socketio_recovery": "/",
    "text_protocols": "/ws",  # any path serves; the tests use each protocol's usual one
    "mqtt_broker": "/mqtt",  # aedes (Node.js); any path serves
    "amqtt_broker": "/mqtt",  # amqtt (PyPI, a venv of its own); any path serves
}


class AppServerStartError(RuntimeError):
    """The server exited or stayed silent instead of printing its readiness line."""


class RunningAppServer(ReadyProcess):
    """A started test server; ``.port``, ``.pid``, ``.url``; stop it with ``stop()`` or a ``with`` block."""

    name = ""  # set per instance by start_app_server

    @property
    def url(self) -> str:
        """WebSocket URL of the server's endpoint, e.g. ``ws://127.0.0.1:PORT/ws``."""
        return f"ws://{self.netloc}{WS_PATHS[self.name]}"

    @property
    def http_url(self) -> str:
        """Plain HTTP base URL, e.g. ``http://127.0.0.1:PORT`` (what Socket.IO clients take)."""
        return f"http://{self.netloc}"

    @property
    def metrics_url(self) -> str:
        """Prometheus text on the same port."""
        return f"http://{self.netloc}/metrics"

    def __repr__(self) -> str:
        return f"RunningAppServer({self.name!r}, url={self.url!r}, pid={self.pid})"


def start_app_server(
    name: str,
    *args: str,
    env: Mapping[str, str | None] | None = None,
    timeout_s: float = 20.0,
) -> RunningAppServer:
    """Start ``python -m tests.servers.<name> *args`` and return once it listens.

    ``env`` overrides inherited variables (None removes one); APP_AUTH_TOKEN is removed
    unless given, so a developer's environment never switches auth on by surprise.
    Call it from the main thread: the server dies with the thread that started it.
    """
    if name not in WS_PATHS:
        raise ValueError(f"unknown test server {name!r}; known: {', '.join(sorted(WS_PATHS))}")

    def wrap(*parts: object) -> RunningAppServer:
        server = RunningAppServer(*parts)  # type: ignore[arg-type]
        server.name = name
        return server

    return ready.start_ready_process(
        f"tests.servers.{name}",
        list(args),
        ready_line=READY_LINE,
        host="127.0.0.1",
        wrap=wrap,
        error=AppServerStartError,
        env={AUTH_TOKEN_ENV: None, **(env or {})},
        timeout_s=timeout_s,
    )


__all__: Sequence[str] = ["AUTH_TOKEN_ENV", "AppServerStartError", "RunningAppServer", "start_app_server"]
