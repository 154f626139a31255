"""However a run is stopped, it ends in time, keeps its results and leaves no process behind.

One test runs a seeded matrix of short real runs: Ctrl-C (SIGINT to Locust's process group,
as a terminal sends it), SIGTERM, -t expiring and the web UI's Stop button, each landing
while users connect, hold, close or pause, with 1 and with 500 users, some with worker
processes, the fault proxy or a --stop-timeout. A hang that shows once in twenty runs shows
here. Runs go a few at a time; every one must stop within --stop-timeout + 5 s (Locust's
default 0, or 2 s), mark its verdict interrupted, write its CSV files, print no traceback,
and leave none of its processes (the bundled server, the fault proxy, workers) running.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from tests.servers import hostile_servers as hostile
from tests.support.e2e_helpers import free_port, wait_until
from tests.support.locust_process import LocustProcess

pytestmark = pytest.mark.e2e  # real Locust processes

SEED = 17  # the matrix's own seed: the same cases and offsets on every run
REPETITIONS = 3  # 48 runs: a 1-in-20 hang shows with 90 % odds
STOPS = ("sigint", "sigterm", "run-time", "web-stop")
MOMENTS = ("connect", "hold", "close", "pause")
STOP_LIMIT_S = 5.0  # on top of --stop-timeout (0, Locust's default, unless a run sets it)
CONCURRENT_RUNS = 3  # runs at a time: most of a run is waiting
BASE_ARGS = ["--baseline-s", "0.5", "--settle-s", "0.5", "--flap-cycles", "1000", "--recovery-timeout-s", "1"]

# What makes users sit in each step: a slow handshake, a long hold, a server that never
# answers the close frame (the close waits for the 10 s WebSocket timeout), a long pause.
MOMENT_ARGS = {
    "connect": ["--ref-server-fault", "slow-handshake", "--flap-connected-ms", "0", "--flap-disconnected-ms", "0"],
    "hold": ["--flap-connected-ms", "10000"],
    "close": ["--flap-connected-ms", "0", "--flap-disconnected-ms", "0", "--ws-timeout-s", "10", "--no-flap-echo"],
    "pause": ["--flap-connected-ms", "0", "--flap-disconnected-ms", "10000"],
}


@dataclass(frozen=True)
class StopCase:
    """One run of the matrix."""

    stop: str  # how the run is stopped (STOPS)
    moment: str  # the step users are in when it stops (MOMENTS)
    users: int  # -u
    offset_s: float  # how long into the flapping the stop comes
    extra: tuple[str, ...] = ()  # worker processes or network conditions, for some runs

    @property
    def stop_timeout_s(self) -> float:
        """Locust's --stop-timeout of this run (0 unless an extra sets it)."""
        return float(self.extra[1]) if self.extra[:1] == ("--stop-timeout",) else 0.0

    def __str__(self) -> str:
        extra = f" {' '.join(self.extra)}" if self.extra else ""
        return f"{self.stop} during {self.moment}, {self.users} users, +{self.offset_s:.2f} s{extra}"


def stop_cases(seed: int, repetitions: int) -> list[StopCase]:
    """`repetitions` times every stop x moment pair; users (1 or 500 in turn), offsets and extras from `seed`."""
    rng = random.Random(seed)
    cases = []
    for repetition in range(repetitions):
        for index, (stop, moment) in enumerate((stop, moment) for stop in STOPS for moment in MOMENTS):
            users = (1, 500)[(index + repetition) % 2]  # each pair with 1 and with 500 users
            extra: tuple[str, ...] = ()
            if stop != "web-stop" and moment != "close" and rng.random() < 0.3:
                extra = rng.choice((("--processes", "2"), ("--net-latency-ms", "5"), ("--stop-timeout", "2")))
            cases.append(StopCase(stop, moment, users, round(rng.uniform(0.1, 1.5), 2), extra))
    return cases


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _bundled_server_pid(output: str) -> int | None:
    match = re.search(r"started the bundled reference server \(pid (\d+)", output)
    return int(match.group(1)) if match else None


def run_case(case: StopCase, out_dir: Path) -> str | None:
    """Run one case; None when it behaved, else what went wrong (with the output's tail)."""
    out_dir.mkdir()
    args = [*BASE_ARGS, "-u", str(case.users), "-r", str(case.users), *MOMENT_ARGS[case.moment], *case.extra]
    if "--processes" in case.extra:  # the master on loopback, on a port of its own (runs go side by side)
        master_port = str(free_port())
        args += ["--master-bind-host", "127.0.0.1", "--master-bind-port", master_port, "--master-port", master_port]
    server = hostile.HostileProcess(hostile.NO_CLOSE_REPLY) if case.moment == "close" else None
    if server is not None:
        args += ["--host", server.url]
    run_time_s = None
    if case.stop == "run-time":  # whole seconds (Locust's -t): baseline, flapping, settle
        run_time_s = math.ceil(0.5 + case.offset_s + 0.5)
        args += ["-t", str(run_time_s)]
    web_port = free_port() if case.stop == "web-stop" else None
    if web_port is not None:
        args += ["--web-host", "127.0.0.1", "--web-port", str(web_port)]
    locust = LocustProcess(args, out_dir, headless=web_port is None)
    try:
        problem = _drive(case, locust, web_port, run_time_s)
    except AssertionError as error:
        problem = str(error)
    finally:
        locust.kill()
        if server is not None:
            server.stop()
    return None if problem is None else f"{case}: {problem}\n{locust.output[-2500:]}"


def _drive(case: StopCase, locust: LocustProcess, web_port: int | None, run_time_s: float | None) -> str | None:
    """Start the run, stop it the case's way, and check what is left; a problem as a sentence, or None."""
    base_url = f"http://127.0.0.1:{web_port}"
    if web_port is not None:

        def ui_up() -> bool:
            assert locust.process.poll() is None, "locust exited before its web UI answered"
            try:
                return requests.get(base_url + "/", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(ui_up, 60, "the web UI")
        answer = requests.post(
            base_url + "/swarm", data={"user_count": str(case.users), "spawn_rate": str(case.users)}, timeout=10
        )
        assert answer.json()["success"], answer.text
    locust.wait_for("flapping phase", deadline_s=60)
    flapping_at = time.monotonic()
    time.sleep(case.offset_s)
    processes = _descendants(locust.process.pid)  # the bundled server, the proxy, workers
    server_pid = _bundled_server_pid(locust.output)
    if server_pid is not None and server_pid not in {p.pid for p in processes}:
        return f"the bundled server (pid {server_pid}) is not a child of Locust"

    stopped_at = time.monotonic()
    if case.stop == "sigint":  # Ctrl-C in a terminal: to the whole process group (workers too)
        os.killpg(locust.process.pid, signal.SIGINT)
    elif case.stop == "sigterm":
        locust.process.send_signal(signal.SIGTERM)
    elif case.stop == "run-time":
        assert run_time_s is not None
        stopped_at = flapping_at + run_time_s - 1.0  # when -t ends the flapping (the settle phase follows)
    else:
        requests.post(base_url + "/stop", timeout=10)
        verdict_file = locust.out_dir / "verdict.json"
        wait_until(verdict_file.exists, STOP_LIMIT_S, "the verdict after the web UI's Stop")
        stopped_within = time.monotonic() - stopped_at
        locust.process.send_signal(signal.SIGTERM)  # then quit Locust itself
    limit = STOP_LIMIT_S + case.stop_timeout_s + (0.5 if case.stop == "run-time" else 0.0)  # -t still settles
    code = locust.wait(timeout_s=limit + (STOP_LIMIT_S if case.stop == "web-stop" else 0) + 30)
    took_s = time.monotonic() - stopped_at
    if case.stop == "web-stop":
        took_s = stopped_within
    if took_s > limit:
        return f"took {took_s:.1f} s to stop (limit {limit:.1f} s)"
    if code not in (0, 3):
        return f"exit code {code}"
    if "Traceback" in locust.output:
        start = locust.output.index("Traceback")
        return f"a traceback in the output:\n{locust.output[start : start + 2500]}"
    verdict = json.loads((locust.out_dir / "verdict.json").read_text())
    if verdict["interrupted"] is not True:
        return "the verdict is not marked interrupted"
    for name in ("resources.csv", "run_stats.csv", "verdict.junit.xml"):
        if not (locust.out_dir / name).is_file():
            return f"{name} was not written"
    deadline = time.monotonic() + 5
    while [p for p in processes if not _gone(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [f"{p.pid} {' '.join(p.cmdline()[1:4])}" for p in processes if not _gone(p)]
    return f"processes left behind: {left}" if left else None


def test_every_way_of_stopping_ends_in_time_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """48 seeded runs, a few at a time: every stop x moment pair three times, 1 or 500 users, all behave."""
    cases = stop_cases(SEED, REPETITIONS)
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENT_RUNS) as pool:
        problems = list(pool.map(lambda n: run_case(cases[n], tmp_path / f"run{n}"), range(len(cases))))
    found = [p for p in problems if p is not None]
    assert not found, "\n\n".join(found)
    assert time.monotonic() - started < 240
