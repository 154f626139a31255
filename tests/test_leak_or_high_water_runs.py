"""Real runs of the rounds rule: a server that plateaus passes, a server that leaks per cycle fails.

Real Locust processes against real servers on 127.0.0.1. The 200-user runs hold 300 ms
and pause 100 ms (500 connects a second, gentle on a shared 2-core machine) for a few
cycles per round; their connect limit leaves room for a slow machine's timeouts, since
memory is what they test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from tests.support.e2e_helpers import worker_processes
from tests.support.locust_process import ROOT, LocustProcess

pytestmark = pytest.mark.e2e  # real Locust processes

MIB = 1024 * 1024

# The defaults a user gets (locust.conf and the options), over the tests' fast FAST_ARGS.
DEFAULT_RUN = [
    "-u", "10", "-r", "10", "--flap-cycles", "20", "--baseline-s", "2", "--settle-s", "5",
    "--monitor-interval-s", "0.5", "--flap-rounds", "2",
]  # fmt: skip
# 200 users, a few cycles in each of two rounds.
USERS_200 = [
    "-u", "200", "-r", "200", "--flap-cycles", "3", "--flap-connected-ms", "300", "--flap-disconnected-ms", "100",
    "--baseline-s", "1", "--settle-s", "3", "--monitor-interval-s", "0.25", "--flap-rounds", "2",
    "--min-connect-success-pct", "90", "--ws-timeout-s", "10",
]  # fmt: skip


@pytest.fixture
def high_water_server() -> Iterator[Callable[..., tuple[str, int]]]:
    """Start tests/servers/high_water_server.py with `start(*args)`: its URL and pid; stopped at teardown."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[str, int]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.high_water_server", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        port = int(process.stdout.readline().strip().split("=")[1])
        return f"ws://127.0.0.1:{port}/", process.pid

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _round_mb(verdict: dict, flap_round: int) -> float:
    """The settled memory after `flap_round`, MB."""
    levels = next(r for r in verdict["rounds"] if r["round"] == flap_round)["settled"]
    return float(levels["rss_bytes"]) / MIB


def test_a_server_whose_buffers_plateau_passes_at_200_users(locust, high_water_server) -> None:
    """A pool sized by peak concurrency grows past 15 MB in round 1 and not after: memory passes, exit 0."""
    url, pid = high_water_server()
    run = locust("--host", url, "--server-pid", str(pid), *USERS_200, timeout_s=240)
    assert run.exit_code == 0, run.output[-3000:]
    verdict = run.verdict
    high_water_mb = _round_mb(verdict, 1) - verdict["baseline"]["rss_bytes"] / MIB
    assert high_water_mb > 15  # the one-round rule (baseline to settled, limit 15 MB) would fail this server
    memory = run.check("memory_growth_mb")
    assert memory["status"] == "pass"
    assert "in round 1 (high-water:" in memory["detail"]
    assert run.check("leak_kb_per_cycle")["status"] == "pass"
    assert [r["cycles"] for r in verdict["rounds"]] == [600, 600]


def test_the_bundled_servers_leak_fails_at_10_users_x_20_cycles(locust) -> None:
    """leak-memory (128 KiB a connection) at 10 users x 20 cycles: round 2 adds 25 MB; both memory checks fail."""
    run = locust("--ref-server-fault", "leak-memory", *DEFAULT_RUN)
    assert run.exit_code == 3, run.output[-3000:]
    memory = run.check("memory_growth_mb")
    assert memory["status"] == "fail"
    assert memory["detail"].startswith("memory grew ")
    assert " more in round 2 (leak: " in memory["detail"]
    leak = run.check("leak_kb_per_cycle")
    assert leak["status"] == "fail"
    assert 120 <= leak["observed"] <= 160, leak


def test_the_bundled_servers_leak_fails_at_200_users(locust) -> None:
    """leak-memory at 200 users: round 2's 600 cycles add about 75 MB; the verdict fails."""
    run = locust("--ref-server-fault", "leak-memory", *USERS_200, timeout_s=240)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("memory_growth_mb")["status"] == "fail"
    assert run.check("leak_kb_per_cycle")["status"] == "fail"
    assert _round_mb(run.verdict, 2) - _round_mb(run.verdict, 1) > 50


def test_a_64_kb_leak_under_the_15_mb_limit_is_caught_at_the_default_settings(locust, start_server) -> None:
    """64 KiB a connection is 12.5 MB over a round's 200 cycles, under 15 MB: leak_kb_per_cycle catches it."""
    server = start_server("--leak-memory-kb", "64")
    run = locust("--host", server.url, "--server-port", str(server.port), *DEFAULT_RUN)
    assert run.exit_code == 3, run.output[-3000:]
    memory = run.check("memory_growth_mb")
    assert memory["status"] == "pass"
    assert memory["observed"] < 15
    leak = run.check("leak_kb_per_cycle")
    assert leak["status"] == "fail"
    assert 56 <= leak["observed"] <= 90, leak
    assert "in round 2 (leak: " in leak["detail"]  # settled levels, not a fit over a few flapping samples


def test_a_leak_on_top_of_a_high_water_mark_is_caught(locust, high_water_server) -> None:
    """The pooled server leaking 64 KiB a connection as well: the high-water mark does not hide the leak."""
    url, pid = high_water_server("--leak-kb", "64")
    run = locust("--host", url, "--server-pid", str(pid), *DEFAULT_RUN)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("leak_kb_per_cycle")["status"] == "fail"
    assert run.check("leak_kb_per_cycle")["observed"] >= 56


def test_the_healthy_bundled_server_passes_both_rounds_at_the_default_settings(locust) -> None:
    """The healthy bundled server: two rounds of 200 cycles, every check passes, the CSV tags samples by round."""
    run = locust(*DEFAULT_RUN)
    assert run.exit_code == 0, run.output[-3000:]
    verdict = run.verdict
    assert [r["cycles"] for r in verdict["rounds"]] == [200, 200]
    assert verdict["connections"]["users_finished"] == 20
    assert run.check("leak_kb_per_cycle")["detail"].startswith("memory ")
    assert "round 2" in run.check("leak_kb_per_cycle")["detail"]
    rows = (run.out_dir / "resources.csv").read_text().splitlines()[1:]
    assert {(row.split(",")[1], row.split(",")[2]) for row in rows} == {
        ("baseline", "0"),
        ("flapping", "1"),
        ("settle", "1"),
        ("flapping", "2"),
        ("settle", "2"),
    }
    assert "flapping phase (round 2 of 2)" in run.output


def test_two_worker_processes_flap_two_rounds(locust) -> None:
    """--processes 2: each round's users finish on the workers, the master counts them per round, exit 0."""
    run = locust(*worker_processes(2), "-u", "6", "-r", "6", "--flap-rounds", "2", timeout_s=180)
    assert run.exit_code == 0, run.output[-3000:]
    verdict = run.verdict
    assert int(run.stats_row("connect")["Request Count"]) == 2 * 6 * 5
    assert verdict["connections"]["users_finished"] == 12
    assert [r["round"] for r in verdict["rounds"]] == [1, 2]
    assert sum(r["cycles"] for r in verdict["rounds"]) == 60


def test_a_run_time_is_shared_by_the_rounds(locust) -> None:
    """--flap-cycles 0 and -t: both rounds flap and settle inside -t; the run is not interrupted."""
    # A settle goes on while the server still moves (on a loaded machine, for seconds): capped
    # here, so that round 1's settle cannot take round 2's share of -t.
    run = locust("--flap-cycles", "0", "-t", "10", "--flap-rounds", "2", "--settle-max-s", "2", timeout_s=120)
    verdict = run.verdict
    # -t stops each round's users wherever they are, a handshake included: no failure counted.
    assert verdict["connections"]["connect_failures"] == 0, run.output[-3000:]
    for name in ("memory_growth_mb", "leak_kb_per_cycle", "fd_growth", "lingering_connections", "agents_growth"):
        assert run.check(name)["status"] == "pass", run.check(name)
    assert verdict["interrupted"] is False
    assert [r["round"] for r in verdict["rounds"]] == [1, 2]
    assert all(r["cycles"] > 0 for r in verdict["rounds"])
    assert "in round 2" in run.check("memory_growth_mb")["detail"]


def test_a_run_interrupted_in_round_two_judges_round_one_and_says_so(tmp_path) -> None:
    """Ctrl-C during round 2's flapping: the verdict is interrupted, memory judged from round 1, and says so."""
    fast = ["--flap-rounds", "2", "--flap-cycles", "100", "--flap-connected-ms", "20", "--flap-disconnected-ms", "20"]
    locust = LocustProcess(fast, tmp_path)
    try:
        locust.wait_for("flapping phase (round 2 of 2)", deadline_s=90)
        os.killpg(locust.process.pid, signal.SIGINT)
        code = locust.wait(timeout_s=60)
    finally:
        locust.kill()
    assert code in (0, 3), locust.output[-3000:]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["interrupted"] is True
    memory = next(c for c in verdict["checks"] if c["name"] == "memory_growth_mb")
    assert memory["status"] == "pass", memory
    assert memory["detail"].endswith(
        "; the run was interrupted before round 2 settled, so judged from baseline to settled (one round)"
    )
