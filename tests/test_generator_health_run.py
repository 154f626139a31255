"""The load generator's own health, end to end.

Over 10,000 cycles the Locust process's open fds and memory stay flat; when the generator
itself runs out of file descriptors the verdict blames the generator, not the server.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.support.locust_process import ROOT, LocustProcess, LocustRun, locust_command

pytestmark = pytest.mark.e2e  # real Locust processes

USERS = 50
CYCLES = 200  # per user: 10,000 cycles in all
RSS_GROWTH_LIMIT_MB = 4.0  # between 20 % and 90 % of the flapping; Python's allocator is not exact
FD_HEADROOM = 50  # Locust's own descriptors (logs, pipes, the event loop, the monitor) beside one per user


def _window(samples: list[tuple[float, int, int]], start: float, end: float, lo: float, hi: float) -> list:
    """The samples taken between `lo` and `hi` (fractions) of the span from `start` to `end`."""
    span = end - start
    return [s for s in samples if start + lo * span <= s[0] <= start + hi * span]


def test_ten_thousand_cycles_leave_the_generators_fds_and_memory_flat(tmp_path: Path) -> None:
    """50 users x 200 cycles with no hold and no pause: fds bounded by the users, memory flat."""
    locust = LocustProcess(
        [
            "-u", str(USERS), "-r", str(USERS), "--flap-cycles", str(CYCLES),
            "--flap-connected-ms", "0", "--flap-disconnected-ms", "0", "--no-flap-echo",
            "--max-recovery-ms", "5000",
        ],
        tmp_path,
    )  # fmt: skip
    samples: list[tuple[float, int, int]] = []  # (time, RSS bytes, open fds) of the Locust process
    try:
        locust.wait_for("flapping phase", deadline_s=60)
        process = psutil.Process(locust.process.pid)
        started = time.monotonic()
        while "settle phase" not in locust.output and time.monotonic() - started < 120:
            try:
                with process.oneshot():
                    samples.append((time.monotonic(), process.memory_info().rss, process.num_fds()))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
        ended = time.monotonic()
        code = locust.wait(timeout_s=60)
    finally:
        locust.kill()
    assert code == 0, locust.output[-3000:]
    run = LocustRun(code, locust.output, tmp_path)
    assert run.verdict["connections"]["cycles_completed"] == USERS * CYCLES
    # (TIME_WAIT warnings are the machine's, shared with whatever else runs: not asserted here.)
    assert not [w for w in run.verdict["generator"]["warnings"] if "file descriptors" in w]
    assert run.verdict["generator"]["peak_open_fds"] < USERS + FD_HEADROOM, run.verdict["generator"]
    assert max(fds for _, _, fds in samples) < USERS + FD_HEADROOM
    early = _window(samples, started, ended, 0.15, 0.25)
    late = _window(samples, started, ended, 0.85, 0.95)
    assert len(early) >= 3 and len(late) >= 3, (len(samples), ended - started)
    growth_mb = (statistics.median(s[1] for s in late) - statistics.median(s[1] for s in early)) / 2**20
    assert growth_mb < RSS_GROWTH_LIMIT_MB, f"RSS grew {growth_mb:.1f} MB over the flapping"
    fd_growth = statistics.median(s[2] for s in late) - statistics.median(s[2] for s in early)
    assert fd_growth <= 10, fd_growth


def test_running_out_of_file_descriptors_is_blamed_on_the_generator(tmp_path: Path, start_server) -> None:
    """With a 120-fd limit and 150 users holding connections, connects fail as the generator's
    fault; the monitor does not mistake its own blindness for a dead server, and the server passes."""
    limit = 120
    server = start_server()  # a server of its own: a bundled one would inherit Locust's low limit

    def low_fd_limit() -> None:  # in the child: soft and hard, so Locust cannot raise it
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    args = [
        "--host", server.url, "-u", "150", "-r", "150", "--flap-cycles", "2", "--flap-connected-ms", "1500",
        "--max-recovery-ms", "5000",
    ]  # fmt: skip
    process = subprocess.run(
        locust_command(args, tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=low_fd_limit,
    )
    output = process.stdout + process.stderr
    assert process.returncode == 3, output[-3000:]
    run = LocustRun(process.returncode, output, tmp_path)
    assert run.verdict["stop_reason"] is None  # not stopped as "server died"
    statuses = {check["name"]: check["status"] for check in run.verdict["checks"]}
    assert [name for name, status in statuses.items() if status == "fail"] == ["connect_success_pct"]
    assert statuses["server_alive"] == "pass"
    assert f"pid {server.pid}" in run.verdict["monitor"]["watching"]
    detail = run.check("connect_success_pct")["detail"]
    assert "the failures came from the load generator itself: too many open files" in detail
    assert "raise `ulimit -n`" in detail
    assert any(f"of its {limit} file descriptors" in w for w in run.verdict["generator"]["warnings"])
    assert "WS connect: too many open files (load generator limit)" in output
