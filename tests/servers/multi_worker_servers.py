"""Real multi-worker servers on 127.0.0.1 for the tests: uvicorn with --workers, and a pre-fork leaky server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.e2e_helpers import free_port, wait_until
from tests.support.locust_process import ROOT

DEADLINE_S = 30.0 * float(os.environ.get("TEST_TIME_SCALE", "1"))  # startup of workers on a slow machine


@dataclass
class MultiWorkerServer:
    """A server process with worker processes: its port, its own pid and its workers' pids."""

    port: int  # where it listens on 127.0.0.1
    pid: int  # the supervising process (uvicorn's supervisor, the pre-fork parent)
    workers: list[int]  # the worker pids; for the pre-fork server, the accepting one first

    @property
    def url(self) -> str:
        """The ws:// URL of the server."""
        return f"ws://127.0.0.1:{self.port}/"


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM the server (it stops its workers), then kill its whole group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # any worker left behind
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@contextmanager
def uvicorn_workers(log_dir: Path, workers: int = 2) -> Iterator[MultiWorkerServer]:
    """`uvicorn tests.servers.uvicorn_echo_app:app --workers N` on a free port, once every worker has started."""
    port = free_port()
    log_path = log_dir / "uvicorn.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.servers.uvicorn_echo_app:app", "--workers", str(workers)]
            + ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own group, so teardown reaches every worker
        )
    try:

        def started() -> list[int] | None:
            if process.poll() is not None:
                raise AssertionError(f"uvicorn exited:\n{log_path.read_text()[-2000:]}")
            text = log_path.read_text()
            pids = [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", text)]
            ready = text.count("Application startup complete")
            return pids if len(pids) == workers and ready == workers else None

        worker_pids = wait_until(started, DEADLINE_S, f"{workers} uvicorn workers to start")
        yield MultiWorkerServer(port=port, pid=process.pid, workers=worker_pids)
    finally:
        _stop(process)


@contextmanager
def prefork_leaky_server(leak_mb_per_connection: float = 2.0) -> Iterator[MultiWorkerServer]:
    """`python -m tests.servers.prefork_leaky_server`: every connection lands in its first worker, which leaks."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.servers.prefork_leaky_server",
            "--leak-mb-per-connection",
            str(leak_mb_per_connection),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints it at once; it exits (EOF) on failure
        match = re.match(r"ready port=(\d+) accepting=(\d+) idle=(\d+)", line)
        assert match, f"no ready line from the pre-fork server: {line!r}"
        port, accepting, idle = (int(group) for group in match.groups())
        yield MultiWorkerServer(port=port, pid=process.pid, workers=[accepting, idle])
    finally:
        _stop(process)
