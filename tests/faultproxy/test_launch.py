"""The launcher that tests and the Locust plugin use to start the proxy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from faultproxy.launch import FaultProxyStartError, start_faultproxy
from refserver.launch import RunningRefServer
from tests.faultproxy.helpers import DEADLINE_S

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_running_proxy_reports_its_address(echo_server: RunningRefServer) -> None:
    """The handle knows the port and pid from the readiness line and stops idempotently."""
    with start_faultproxy(echo_server.host, echo_server.port) as proxy:
        assert proxy.host == "127.0.0.1" and proxy.port > 0
        assert proxy.netloc == f"127.0.0.1:{proxy.port}"
        assert proxy.pid == proxy.process.pid
        assert proxy.stdout_text() == f"faultproxy ready port={proxy.port} pid={proxy.pid}\n"
        assert proxy.returncode is None
    assert proxy.stop() == 0 and proxy.returncode == 0


def test_start_failure_raises_with_stderr() -> None:
    """A refused address makes start_faultproxy raise with the proxy's one-line reason."""
    with pytest.raises(FaultProxyStartError, match="exited with code 2") as excinfo:
        start_faultproxy("10.0.0.1", 80)
    assert "not a loopback address" in str(excinfo.value)


def test_proxy_dies_with_its_launcher(tmp_path: Path, echo_server: RunningRefServer) -> None:
    """A proxy started by start_faultproxy exits when the launching process is SIGKILLed."""
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from faultproxy.launch import start_faultproxy
        proxy = start_faultproxy("127.0.0.1", {echo_server.port})
        open({str(pid_file)!r}, "w").write(str(proxy.pid))
        time.sleep(60)
        """
    )
    launcher = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 2 * DEADLINE_S
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and launcher.poll() is None, "launcher did not start the proxy"
            time.sleep(0.02)
        proxy = psutil.Process(int(pid_file.read_text()))
    finally:
        launcher.kill()
        launcher.wait(DEADLINE_S)
    proxy.wait(DEADLINE_S)  # raises psutil.TimeoutExpired if it outlived its launcher


def test_readme_example_runs(echo_server: RunningRefServer) -> None:
    """The README's Python example starts and stops a proxy as written."""
    readme = (REPO_ROOT / "faultproxy" / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {"server_port": echo_server.port}
    exec(example, namespace)
    assert str(namespace["url"]).startswith("ws://127.0.0.1:")
