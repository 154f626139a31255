"""Issue 22: a run across hosts: master and server on one, two workers on another, the workers with nothing but
the installed pack (started from an empty folder with `-f -`)."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from childproc.parent_death import DIE_WITH_PARENT_FLAG
from tests.support.background_process import Process
from tests.support.installed_pack import InstalledPack
from tests.support.locust_process import FAST_ARGS, ROOT
from tests.support.netns import Host, two_hosts

pytestmark = pytest.mark.e2e  # real Locust processes

RUN_TIMEOUT_S = 180
WORKERS_WAIT_S = 90  # the master gives up on a worker that never connects (and the test shows the workers' output)
MASTER_PORT = "5557"  # Locust's default: free in a namespace of our own
USERS = 6  # three on each worker


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    """Host A (10.200.0.1) and host B (10.200.0.2), namespaces joined by a veth pair."""
    with two_hosts() as pair:
        yield pair


def _run_across_hosts(hosts: tuple[Host, Host], installed: InstalledPack, folder: Path, *server_args: str) -> dict:
    """Server and master on A, two workers on B from an empty folder; the master's exit code, output and files."""
    a, b = hosts
    master_folder, empty = folder / "master", folder / "worker"
    master_folder.mkdir()
    empty.mkdir()
    server_command = [sys.executable, "-m", "refserver", DIE_WITH_PARENT_FLAG, "--host", a.address, "--port", "0"]
    server = Process(a.command(*server_command, *server_args), ROOT)
    processes = [server]
    try:
        server.wait_for("refserver ready port=", 60)
        port = re.search(r"refserver ready port=(\d+)", server.output)
        assert port is not None
        env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
        master = Process(
            a.command(
                sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--master", "--headless",
                "--master-bind-host", a.address, "--master-bind-port", MASTER_PORT, "--expect-workers", "2",
                "--expect-workers-max-wait", str(WORKERS_WAIT_S),
                "--host", f"ws://{a.address}:{port.group(1)}/", "--server-port", port.group(1),
                "--verdict-json", str(master_folder / "verdict.json"), "--csv", str(master_folder / "run"),
                *FAST_ARGS, "-u", str(USERS), "-r", str(USERS),
            ),
            master_folder,
            env,
        )  # fmt: skip
        processes.append(master)
        worker_command = [str(installed.bin / "locust"), "--worker", "-f", "-", "--master-host", a.address]
        workers = [Process(b.command(*worker_command), empty, installed.env()) for _ in range(2)]
        processes += workers
        try:
            code = master.wait(RUN_TIMEOUT_S)
            for worker in workers:
                worker.wait(30)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{_outputs_of(workers)}") from None
    finally:
        for process in reversed(processes):
            process.kill()
    if "Gave up waiting for workers" in master.output:
        raise AssertionError(f"a worker never connected:\n{_outputs_of(workers)}")
    assert list(empty.iterdir()) == []  # the workers had, and wrote, nothing in their folder
    with open(master_folder / "run_stats.csv") as file:
        connects = next(row for row in csv.DictReader(file) if row["Name"] == "connect" and row["Type"] == "WS")
    return {
        "code": code,
        "output": master.output,
        "verdict": json.loads((master_folder / "verdict.json").read_text()),
        "connects": int(connects["Request Count"]),
    }


def _outputs_of(workers: list[Process]) -> str:
    return "\n".join(f"--- worker {index}:\n{worker.output[-1500:]}" for index, worker in enumerate(workers))


def _check(verdict: dict, name: str) -> dict:
    return next(check for check in verdict["checks"] if check["name"] == name)


def test_workers_on_another_host_flap_a_healthy_server_to_a_pass(hosts, installed_pack, tmp_path) -> None:
    """Two workers on host B, the server and master on host A: every worker's rows counted, the server watched,
    exit 0."""
    run = _run_across_hosts(hosts, installed_pack, tmp_path)
    assert run["code"] == 0, run["output"][-3000:]
    assert run["connects"] == USERS * 5  # both workers' rows
    assert run["verdict"]["cycles"]["completed"] == USERS * 5
    assert "flapping-pack: monitoring " in run["output"]
    assert _check(run["verdict"], "fd_growth")["status"] == "pass"  # the monitor watched the server on host A


def test_workers_on_another_host_fail_a_leaking_server(hosts, installed_pack, tmp_path) -> None:
    """The same run against a server leaking an fd per connection: the master's verdict fails it, exit 3."""
    run = _run_across_hosts(hosts, installed_pack, tmp_path, "--leak-fds")
    assert run["code"] == 3, run["output"][-3000:]
    assert run["connects"] == USERS * 5
    fd_growth = _check(run["verdict"], "fd_growth")
    assert fd_growth["status"] == "fail" and fd_growth["observed"] >= USERS * 5
