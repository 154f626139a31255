"""Start ``python -m faultproxy`` as a child process and wait until it listens.

The same approach as ``refserver/launch.py``: plain ``subprocess`` plus
polling of unlinked temporary files, so it works in a gevent-patched Locust
process. Free of pytest, gevent and Locust.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

READY_LINE = re.compile(r"^faultproxy ready port=(\d+) pid=(\d+)$")
_POLL_S = 0.02
_STDERR_TAIL_CHARS = 4000
# The folder that holds the faultproxy package, so `-m faultproxy` works from any cwd.
_IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)


class FaultProxyStartError(RuntimeError):
    """The proxy exited or stayed silent instead of printing its readiness line."""


def parse_ready_line(line: str) -> tuple[int, int] | None:
    """Return ``(port, pid)`` from a readiness line, or None for any other line."""
    match = READY_LINE.match(line.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def format_address(host: str, port: int) -> str:
    """``HOST:PORT`` as the CLI reads it, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_args(
    upstream_host: str,
    upstream_port: int,
    *,
    listen_host: str = "127.0.0.1",
    latency_ms: int = 0,
    jitter_ms: int = 0,
    bandwidth_kbps: int = 0,
    reset_pct: float = 0,
    reset_after_ms: int = 0,
    seed: int | None = None,
) -> list[str]:
    """The command-line arguments for these settings; toxics left at 0 are left out."""
    args = ["--listen", format_address(listen_host, 0), "--upstream", format_address(upstream_host, upstream_port)]
    for flag, value in (
        ("--latency-ms", latency_ms),
        ("--jitter-ms", jitter_ms),
        ("--bandwidth-kbps", bandwidth_kbps),
        ("--reset-pct", reset_pct),
        ("--reset-after-ms", reset_after_ms),
    ):
        if value:
            args += [flag, str(value)]
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


def _open_capture() -> tuple[int, BinaryIO]:
    # Separate open file descriptions: the child writes at its own offset, we read at ours.
    write_fd, path = tempfile.mkstemp(prefix="faultproxy-", suffix=".log")
    reader = open(path, "rb")  # noqa: SIM115 - lives as long as the proxy
    os.unlink(path)  # nothing to clean up later; gone once both ends close
    return write_fd, reader


def _read_all(reader: BinaryIO) -> str:
    reader.seek(0)
    return reader.read().decode("utf-8", errors="replace")


class RunningFaultProxy:
    """A started proxy process; stop it with ``stop()`` or by leaving a ``with`` block."""

    def __init__(
        self, process: subprocess.Popen[bytes], host: str, port: int, pid: int, stdout: BinaryIO, stderr: BinaryIO
    ) -> None:
        self.process = process  # the `python -m faultproxy` child
        self.host = host  # address clients dial
        self.port = port  # the port the proxy reported as bound
        self.pid = pid  # pid from the readiness line
        self._stdout = stdout  # read end of the child's stdout capture
        self._stderr = stderr  # read end of the child's stderr capture
        self._final_output: tuple[str, str] | None = None  # captures, kept after stop()

    @property
    def netloc(self) -> str:
        """``HOST:PORT`` to put in a URL, e.g. ``f"ws://{proxy.netloc}/"``."""
        return format_address(self.host, self.port)

    @property
    def returncode(self) -> int | None:
        """Exit code once the process has ended, else None."""
        return self.process.poll()

    def stdout_text(self) -> str:
        """Everything the proxy wrote to stdout so far."""
        return self._final_output[0] if self._final_output else _read_all(self._stdout)

    def stderr_text(self) -> str:
        """Everything the proxy logged to stderr so far (the stats line comes at stop)."""
        return self._final_output[1] if self._final_output else _read_all(self._stderr)

    def stop(self, timeout_s: float = 5.0) -> int:
        """Send SIGTERM, SIGKILL after ``timeout_s``; return the exit code (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        if self._final_output is None:
            self._final_output = (_read_all(self._stdout), _read_all(self._stderr))
            self._stdout.close()
            self._stderr.close()
        return self.process.returncode

    def __enter__(self) -> RunningFaultProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningFaultProxy(netloc={self.netloc!r}, pid={self.pid})"


def start_faultproxy(
    upstream_host: str,
    upstream_port: int,
    *,
    latency_ms: int = 0,
    jitter_ms: int = 0,
    bandwidth_kbps: int = 0,
    reset_pct: float = 0,
    reset_after_ms: int = 0,
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
    args = build_args(
        upstream_host,
        upstream_port,
        listen_host=listen_host,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        bandwidth_kbps=bandwidth_kbps,
        reset_pct=reset_pct,
        reset_after_ms=reset_after_ms,
        seed=seed,
    )
    child_env = dict(os.environ)
    python_path = child_env.get("PYTHONPATH")
    child_env["PYTHONPATH"] = _IMPORT_ROOT + (os.pathsep + python_path if python_path else "")
    command = [sys.executable, "-m", "faultproxy", *(["--die-with-parent"] if die_with_parent else []), *args]

    stdout_fd, stdout_reader = _open_capture()
    stderr_fd, stderr_reader = _open_capture()
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout_fd, stderr=stderr_fd, env=child_env, start_new_session=True
        )
    except BaseException:
        stdout_reader.close()
        stderr_reader.close()
        raise
    finally:
        os.close(stdout_fd)
        os.close(stderr_fd)

    deadline = time.monotonic() + timeout_s
    while True:
        first_line = _read_all(stdout_reader).partition("\n")
        if first_line[1]:
            ready = parse_ready_line(first_line[0])
            if ready is not None:
                port, pid = ready
                return RunningFaultProxy(process, listen_host, port, pid, stdout_reader, stderr_reader)
            problem = f"printed {first_line[0]!r} instead of the readiness line"
            break
        if process.poll() is not None:
            problem = f"exited with code {process.returncode} before it was ready"
            break
        if time.monotonic() > deadline:
            problem = f"was not ready after {timeout_s:g} s"
            break
        time.sleep(_POLL_S)

    proxy = RunningFaultProxy(process, listen_host, 0, process.pid, stdout_reader, stderr_reader)
    proxy.stop(timeout_s=2.0)
    stderr = proxy.stderr_text()[-_STDERR_TAIL_CHARS:]
    raise FaultProxyStartError(f"faultproxy {' '.join(args)} {problem}; its stderr:\n{stderr}")
