"""The benchmark's pack generator records what its parts measure: every cycle's timestamps, and rows only when asked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.locust_process import ROOT

pytestmark = pytest.mark.e2e  # a Locust runner in a process of its own

RUN_TIMEOUT_S = 120


def _generator(port: int, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.python_gen", "--client", "pack", "--url", f"ws://127.0.0.1:{port}/",
         "--users", "3", "--seconds", "1", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_timing_part_gets_each_cycles_connect_and_close_times(bench_server) -> None:
    """Hold 100 ms, pause 50 ms: cycles with start, connected, close start, closed, in order, and no errors."""
    result = _generator(bench_server(), "--mode", "timing", "--hold-ms", "100", "--pause-ms", "50")
    assert result["errors"] == {}
    assert len(result["cycles"]) >= 3  # one second of three users, after the warm-up
    for start, connected, close_start, closed, _user in result["cycles"]:
        assert start <= connected <= close_start <= closed
        assert close_start - connected >= 100 * 0.9  # the hold, ms


def test_the_no_events_diagnostic_still_flaps(bench_server) -> None:
    """--no-events (to tell Locust's share of the bookkeeping) leaves the users' cycles as they were: they complete."""
    result = _generator(bench_server(), "--mode", "throughput", "--no-events")
    assert result["errors"] == {} and result["cycles"] > 0
