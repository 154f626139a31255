"""Start ``python -m faultproxy`` as a child process and wait until it listens.

The process handling is shared with the reference server (`childproc.ready`), so it
works in a gevent-patched Locust process. Free of pytest, gevent and Locust.
"""

from __future__ import annotations

from childproc import ready
from childproc.ready import ReadyProcess
from childproc.ready_line import ReadyLine
from faultproxy.toxics import ToxicSettings

READY_LINE = ReadyLine("faultproxy")
PASS_THROUGH = ToxicSettings()  # no toxics: a plain proxy


class FaultProxyStartError(RuntimeError):
    """The proxy exited or stayed silent instead of printing its readiness line."""


def format_address(host: str, port: int) -> str:
    """``HOST:PORT`` as the CLI reads it, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_args(
    upstream_host: str,
    upstream_port: int,
    *,
    listen_host: str = "127.0.0.1",
    toxics: ToxicSettings = PASS_THROUGH,
    seed: int | None = None,
) -> list[str]:
    """The command-line arguments for these settings; toxics left at 0 are left out."""
    args = ["--listen", format_address(listen_host, 0), "--upstream", format_address(upstream_host, upstream_port)]
    args += toxics.arguments()
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


class RunningFaultProxy(ReadyProcess):
    """A started proxy process; stop it with ``stop()`` or by leaving a ``with`` block.

    ``netloc`` is ``HOST:PORT`` to put in a URL, e.g. ``f"ws://{proxy.netloc}/"``;
    ``stderr_text()`` holds the stats line once the proxy has stopped.
    """

    def __repr__(self) -> str:
        return f"RunningFaultProxy(netloc={self.netloc!r}, pid={self.pid})"


def start_faultproxy(
    upstream_host: str,
    upstream_port: int,
    *,
    toxics: ToxicSettings = PASS_THROUGH,
    seed: int | None = None,
    listen_host: str = "127.0.0.1",
    timeout_s: float = 10.0,
    die_with_parent: bool = True,
) -> RunningFaultProxy:
    """Start ``python -m faultproxy`` in front of the upstream and return once it printed its readiness line.

    With ``die_with_parent`` the proxy gets SIGTERM when the thread that
    called this function exits, so call it from the main thread (gevent
    greenlets are fine: they all run on it). The proxy gets a session of its
    own, so a Ctrl-C in the terminal does not stop it before its owner does.
    Raises FaultProxyStartError with the proxy's stderr if it exits (e.g. on
    a non-loopback address) or stays silent for ``timeout_s``.
    """
    args = build_args(upstream_host, upstream_port, listen_host=listen_host, toxics=toxics, seed=seed)
    return ready.start_ready_process(
        "faultproxy",
        args,
        ready_line=READY_LINE,
        host=listen_host,
        wrap=RunningFaultProxy,
        error=FaultProxyStartError,
        timeout_s=timeout_s,
        die_with_parent=die_with_parent,
    )
