"""Start ``python -m refserver`` as a child process and wait until it listens.

The process handling is shared with the fault proxy (`childproc.ready`): plain
``subprocess`` plus polling of unlinked temporary files, safe under gevent.
Free of pytest, gevent and Locust so tests and the Locust plugin can share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from childproc import ready
from childproc.ready import ReadyProcess
from childproc.ready_line import ReadyLine

READY_LINE = ReadyLine("refserver")


class RefServerStartError(RuntimeError):
    """The server exited or stayed silent instead of printing its readiness line."""


def connect_host(args: Sequence[str]) -> str:
    """Pick the address clients should dial for a server started with ``args``."""
    host = "127.0.0.1"
    for index, arg in enumerate(args):
        if arg == "--host" and index + 1 < len(args):
            host = args[index + 1]
        elif arg.startswith("--host="):
            host = arg.partition("=")[2]
    # A wildcard bind is reachable through loopback.
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


class RunningRefServer(ReadyProcess):
    """A started refserver process; stop it with ``stop()`` or by leaving a ``with`` block."""

    @property
    def url(self) -> str:
        """WebSocket URL of the server, e.g. ``ws://127.0.0.1:PORT/``."""
        return f"ws://{self.netloc}/"

    @property
    def metrics_url(self) -> str:
        """HTTP URL of the Prometheus metrics on the same port."""
        return f"http://{self.netloc}/metrics"

    def __repr__(self) -> str:
        return f"RunningRefServer(url={self.url!r}, pid={self.pid})"


def start_refserver(
    args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    timeout_s: float = 10.0,
    *,
    die_with_parent: bool = True,
) -> RunningRefServer:
    """Start ``python -m refserver *args`` and return once it printed its readiness line.

    ``env`` overrides variables of the inherited environment; a None value
    removes one (e.g. ``{"REFSERVER_AUTH_TOKEN": None}``). With
    ``die_with_parent`` the server gets SIGTERM when the thread that called
    this function exits, so call it from the main thread (gevent greenlets
    are fine: they all run on it). The server gets a session of its own, so
    a Ctrl-C in the terminal does not stop it before its owner does.
    Raises RefServerStartError with the server's stderr if it exits or
    stays silent for ``timeout_s``.
    """
    return ready.start_ready_process(
        "refserver",
        args,
        ready_line=READY_LINE,
        host=connect_host(args),
        wrap=RunningRefServer,
        error=RefServerStartError,
        env=env,
        timeout_s=timeout_s,
        die_with_parent=die_with_parent,
    )
