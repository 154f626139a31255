"""End to end: the monitor and the verdict decide the exit code of real runs."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.support.locust_process import LocustProcess


def test_healthy_server_passes_every_check(locust) -> None:
    """Against the healthy bundled server every check passes (or is skipped with a reason): exit 0."""
    run = locust("--max-memory-growth-pct", "50")
    assert run.exit_code == 0, run.output[-3000:]
    verdict = run.verdict
    assert verdict["passed"] is True
    statuses = {c["name"]: c["status"] for c in verdict["checks"]}
    for name in ("server_alive", "connect_success_pct", "memory_growth_mb", "memory_growth_pct", "fd_growth"):
        assert statuses[name] == "pass"
    assert statuses["lingering_connections"] == "pass"
    assert statuses["agents_growth"] == "pass"
    assert verdict["samples"]["by_phase"]["baseline"] >= 3
    assert verdict["samples"]["by_phase"]["settle"] >= 3
    assert "VERDICT: PASS" in run.output
    assert run.output.index("Response time percentiles") < run.output.index("VERDICT: PASS")


def test_junit_and_timeline_files_are_written(locust) -> None:
    """The JUnit XML has one test case per check; the timeline CSV one row per sample with its phase."""
    run = locust()
    suite = ET.parse(run.out_dir / "verdict.junit.xml").getroot()
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [c["name"] for c in run.verdict["checks"]]
    rows = (run.out_dir / "resources.csv").read_text().splitlines()
    assert rows[0].startswith("t_s,phase,")
    assert len(rows) - 1 == run.verdict["samples"]["total"]
    assert {row.split(",")[1] for row in rows[1:]} == {"baseline", "flapping", "settle"}


@pytest.mark.parametrize(
    ("fault", "extra", "failing"),
    [
        ("leak-memory", ["-u", "10", "--flap-cycles", "10", "--max-memory-growth-mb", "5"], "memory_growth_mb"),
        ("leak-fds", [], "fd_growth"),
        ("reject-503", [], "connect_success_pct"),
    ],
)
def test_each_fault_mode_fails_its_own_check(locust, fault: str, extra: list[str], failing: str) -> None:
    """A faulty bundled server fails the check that watches its bug, with exit code 3."""
    run = locust("--ref-server-fault", fault, *extra)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check(failing)["status"] == "fail", run.check(failing)
    assert "VERDICT: FAIL" in run.output


def test_a_memory_limit_in_percent_can_fail(locust) -> None:
    """--max-memory-growth-pct judges growth relative to the baseline."""
    run = locust("--ref-server-fault", "leak-memory", "-u", "10", "--flap-cycles", "10", "--max-memory-growth-pct", "5")
    assert run.exit_code == 3
    assert run.check("memory_growth_pct")["status"] == "fail"


def test_a_steady_leak_fails_the_per_cycle_slope(locust) -> None:
    """A steady per-connection leak is caught by the slope of memory against cycles; a healthy server passes."""
    fast_cycles = [
        "-u", "10", "--flap-cycles", "30", "--flap-connected-ms", "20", "--flap-disconnected-ms", "20",
        "--monitor-interval-s", "0.1", "--max-memory-growth-mb", "1000",
    ]  # fmt: skip
    healthy = locust(*fast_cycles)
    assert healthy.check("leak_kb_per_cycle")["status"] == "pass", healthy.check("leak_kb_per_cycle")
    run = locust("--ref-server-fault", "leak-memory", *fast_cycles)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("leak_kb_per_cycle")["status"] == "fail", run.check("leak_kb_per_cycle")
    assert run.check("memory_growth_mb")["status"] == "pass"


def test_a_server_killed_mid_run_ends_the_run_early(tmp_path, start_server) -> None:
    """When the watched server dies the run stops at once and server_alive fails."""
    server = start_server()
    locust = LocustProcess(
        ["--host", server.url, "--server-pid", str(server.pid), "--flap-cycles", "0", "-t", "120"], tmp_path
    )
    try:
        locust.wait_for("flapping phase", deadline_s=30)
        time.sleep(1)
        killed_at = time.monotonic()
        server.process.kill()
        code = locust.wait(timeout_s=30)
        assert time.monotonic() - killed_at < 20
    finally:
        locust.kill()
    assert code == 3, locust.output[-3000:]
    verdict = (tmp_path / "verdict.json").read_text()
    assert '"name": "server_alive"' in verdict
    assert "server process exited" in verdict


def test_a_server_with_worker_processes_is_watched_as_a_tree(locust, start_server) -> None:
    """--server-port finds the server's parent and sums its worker processes."""
    server = start_server("--workers", "2")
    run = locust("--host", server.url, "--server-port", str(server.port))
    assert run.exit_code == 0, run.output[-3000:]
    assert "3 processes" in run.verdict["monitor"]["watching"]
    assert run.check("memory_growth_mb")["status"] == "pass"


def test_an_external_server_on_loopback_is_found_from_the_host(locust, start_server) -> None:
    """With only --host on this machine, the monitor watches whoever listens on its port."""
    server = start_server()
    run = locust("--host", server.url)
    assert run.exit_code == 0, run.output[-3000:]
    assert f"pid {server.pid}" in run.verdict["monitor"]["watching"]


def test_a_metrics_url_adds_the_agents_check(locust, start_server) -> None:
    """--server-metrics-url and --agents-metric merge into the samples: the agents check gets data."""
    server = start_server()
    run = locust(
        "--host", server.url, "--server-metrics-url", server.metrics_url, "--agents-metric", "refserver_active_agents"
    )
    assert run.exit_code == 0, run.output[-3000:]
    assert "Prometheus metrics at" in run.verdict["monitor"]["watching"]
    assert run.check("agents_growth")["status"] == "pass"
    assert run.verdict["baseline"]["agents"] == 0


def test_without_a_metrics_url_the_agents_check_is_skipped(locust, start_server) -> None:
    """No agents metric means the check is skipped with its reason, never silently passed."""
    server = start_server()
    run = locust("--host", server.url)
    assert run.check("agents_growth")["status"] == "skip"
    assert "no agents metric" in run.check("agents_growth")["detail"]


@pytest.fixture
def html_server() -> Iterator[str]:
    """An HTTP server that answers every GET with an HTML page (not Prometheus text)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = b"<html><body>hello</body></html>"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BAD_INPUTS = [
    (["--host", "ws://no-such-host.invalid:8765/"], "--host: cannot resolve the host name 'no-such-host.invalid'"),
    (["--server-pid", "4194300"], "--server-pid 4194300: no such process"),
    (["--server-port", "{closed}"], "--server-port {closed}: no process listens on this port"),
    (["--server-metrics-url", "http://127.0.0.1:{closed}/metrics"], "--server-metrics-url"),
    (["--server-metrics-url", "{html}/metrics"], "does not look like Prometheus text"),
    (["--server-metrics-url", "{html}/nothing"], "HTTP 404"),
    (["--max-fd-growth", "-1"], "--max-fd-growth: must be >= 0"),
    (["--max-memory-growth-mb", "lots"], "--max-memory-growth-mb: not a number"),
    (["--flap-jitter", "1.5"], "--flap-jitter: must be in [0, 1)"),
    (["--flap-connected-ms", "-100"], "--flap-connected-ms: must be >= 0"),
    (["--host", "http://127.0.0.1:8000/"], "--host: must start with ws:// or wss://"),
    (["--ref-server-fault", "leak-all"], "--ref-server-fault: unknown fault mode"),
    (["--verdict-json", "/etc/hostname/verdict.json"], "--verdict-json: cannot write to /etc/hostname"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[a[0] for a, _ in BAD_INPUTS])
def test_bad_input_gets_one_line_and_exit_2(locust, html_server: str, args: list[str], message: str) -> None:
    """Bad configuration is refused before any load: one clear line, exit 2, no traceback."""
    closed = str(_closed_port())
    args = [a.replace("{closed}", closed).replace("{html}", html_server) for a in args]
    run = locust(*args, timeout_s=60)
    assert run.exit_code == 2, run.output[-2000:]
    message = message.replace("{closed}", closed)
    error_lines = [line for line in run.output.splitlines() if message in line]
    assert error_lines, run.output[-2000:]
    assert "Traceback" not in run.output
    assert "WS" not in run.output  # no request was made


def test_recovery_is_measured_and_a_slow_server_fails_it(locust) -> None:
    """recovery_ms passes against the healthy server and fails when handshakes take 200 ms."""
    healthy = locust()
    assert healthy.check("recovery_ms")["status"] == "pass"
    assert int(healthy.stats_row("recovery")["Request Count"]) == 1
    slow = locust("--ref-server-fault", "slow-handshake", "--max-recovery-ms", "100")
    assert slow.exit_code == 3, slow.output[-3000:]
    assert slow.check("recovery_ms")["status"] == "fail"
    assert slow.check("recovery_ms")["observed"] >= 200


def test_steady_users_hold_during_flapping_and_are_judged(locust) -> None:
    """Steady users echo beside the flappers; steady_p95_ms passes on a healthy server."""
    run = locust("--steady-users", "2", "--max-steady-p95-ms", "500")
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("steady-connect")["Request Count"]) == 2
    assert int(run.stats_row("steady-echo")["Request Count"]) >= 5
    assert run.check("steady_p95_ms")["status"] == "pass"
    assert int(run.stats_row("connect")["Request Count"]) == 20  # the flappers' own count is unchanged


def test_a_server_that_blocks_its_loop_on_connects_fails_the_steady_users(locust) -> None:
    """A server doing synchronous work per handshake slows everyone's echoes: steady_p95_ms fails."""
    args = ["-u", "10", "-r", "10", "--flap-cycles", "10", "--steady-users", "2", "--max-steady-p95-ms", "20"]
    run = locust("--ref-server-fault", "block-loop", *args)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("steady_p95_ms")["status"] == "fail"
    assert run.check("steady_p95_ms")["observed"] > 20


@pytest.fixture
def leaky_socket_server() -> Iterator[tuple[str, int]]:
    """A server process whose connections linger in CLOSE_WAIT after the clients leave."""
    import subprocess
    import sys

    from tests.support.locust_process import ROOT

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.leaky_socket_server"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip().split("=")[1])
        yield f"ws://127.0.0.1:{port}/", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_connections_left_open_by_the_server_fail_lingering_connections(locust, leaky_socket_server) -> None:
    """A server that never closes its side keeps CLOSE_WAIT sockets: lingering_connections fails."""
    url, pid = leaky_socket_server
    run = locust("--host", url, "--server-pid", str(pid))
    assert run.exit_code == 3, run.output[-3000:]
    lingering = run.check("lingering_connections")
    assert lingering["status"] == "fail"
    # 4 users x 5 cycles, and the recovery probe's connection.
    assert lingering["observed"] == 21
    assert "CLOSE_WAIT=21" in lingering["detail"]
