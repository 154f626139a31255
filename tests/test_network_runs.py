"""Network conditions through the fault proxy, end to end."""

from __future__ import annotations

import uuid

import psutil

RUN_MARK = "FLAP_TEST_RUN_MARK"  # set in one run's environment, inherited by the processes it starts


def _running_proxies(mark: str) -> list[int]:
    """Fault proxies still running that this run started (others' tests may run proxies at the same time)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
            if "faultproxy" in cmdline and process.status() != psutil.STATUS_ZOMBIE:
                if process.environ().get(RUN_MARK) == mark:
                    found.append(process.pid)
        except psutil.Error:  # gone, or not ours to read
            continue
    return found


def test_proxy_latency_shows_in_connect_times(locust) -> None:
    """50 ms per direction makes every handshake take at least 100 ms; the server is still judged healthy."""
    mark = uuid.uuid4().hex
    run = locust("--net-latency-ms", "50", "--settle-s", "3", "--max-recovery-ms", "2000", env={RUN_MARK: mark})
    assert run.exit_code == 0, run.output[-3000:]
    connect = run.stats_row("connect")
    assert float(connect["Min Response Time"]) >= 100
    assert run.check("recovery_ms")["observed"] >= 200  # handshake and one echo: four crossings
    assert "network conditions through a fault proxy: latency 50" in run.output
    assert _running_proxies(mark) == []  # stopped with Locust


def test_proxy_resets_fail_the_connects(locust) -> None:
    """With every connection reset, connects fail under a stable message and the verdict fails."""
    run = locust("--net-reset-pct", "100")
    assert run.exit_code == 3, run.output[-3000:]
    assert int(run.stats_row("connect")["Failure Count"]) == 20
    failures = (run.out_dir / "run_failures.csv").read_text()
    assert "connection reset during connect" in failures
    assert run.check("connect_success_pct")["status"] == "fail"


def test_network_conditions_need_a_local_server(locust) -> None:
    """A remote --host with --net-* options is refused before any load: one line, exit 2."""
    run = locust("--host", "ws://0.0.0.0:8765/", "--net-latency-ms", "10", timeout_s=60)
    assert run.exit_code == 2, run.output[-2000:]
    assert "--net-*: network conditions need a server on this machine" in run.output
    assert "Traceback" not in run.output
