"""The launcher that tests and the Locust plugin use to start the server."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from refserver.launch import READY_LINE, RefServerStartError, connect_host, start_refserver
from tests.refserver.helpers import DEADLINE_S, StartServer, connect
from tests.support.unavailable import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_parse_ready_line() -> None:
    """Only the exact readiness line yields a port and pid."""
    assert READY_LINE.parse("refserver ready port=8765 pid=42\n") == (8765, 42)
    assert READY_LINE.parse("refserver ready port=x pid=42") is None
    assert READY_LINE.parse("hello") is None


def test_connect_host() -> None:
    """Clients dial the bound address, or loopback for a wildcard bind."""
    assert connect_host([]) == "127.0.0.1"
    assert connect_host(["--host", "::1"]) == "::1"
    assert connect_host(["--host=0.0.0.0"]) == "127.0.0.1"


def test_urls(start_server: StartServer) -> None:
    """url and metrics_url point at the bound port."""
    server = start_server()
    assert server.url == f"ws://127.0.0.1:{server.port}/"
    assert server.metrics_url == f"http://127.0.0.1:{server.port}/metrics"


def test_ipv6_loopback(start_server: StartServer) -> None:
    """A server bound to ::1 gets a bracketed URL that works."""
    if not socket.has_ipv6:
        unavailable("no IPv6")
    server = start_server("--host", "::1")
    assert server.url == f"ws://[::1]:{server.port}/"
    connect(server.url).close()


def test_start_failure_raises_with_stderr() -> None:
    """A server that cannot bind makes start_refserver raise with the server's stderr."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RefServerStartError, match="cannot serve") as excinfo:
            start_refserver(["--port", str(taken.getsockname()[1])])
    assert "exited with code 1" in str(excinfo.value)


def test_server_dies_with_its_launcher(tmp_path: Path) -> None:
    """A server started by start_refserver exits when the launching process is SIGKILLed."""
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from refserver.launch import start_refserver
        server = start_refserver([])
        open({str(pid_file)!r}, "w").write(str(server.pid))
        time.sleep(60)
        """
    )
    launcher = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 2 * DEADLINE_S
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and launcher.poll() is None, "launcher did not start the server"
            time.sleep(0.02)
        server = psutil.Process(int(pid_file.read_text()))
    finally:
        launcher.kill()
        launcher.wait(DEADLINE_S)
    server.wait(DEADLINE_S)  # raises psutil.TimeoutExpired if it outlived its launcher
