"""Issue 22: a worker needs nothing but the installed pack; the master sends its locustfile, files and version."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.background_process import Process
from tests.support.e2e_helpers import free_port
from tests.support.installed_pack import InstalledPack
from tests.support.locust_process import FAST_ARGS, ROOT

pytestmark = pytest.mark.e2e  # real Locust processes

RUN_TIMEOUT_S = 150


def _master(folder: Path, port: int, workers: int, *args: str) -> Process:
    """A headless master on 127.0.0.1:`port`, run from `folder` with the repository's locustfile."""
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--master", "--headless",
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--expect-workers", str(workers),
        "--verdict-json", str(folder / "verdict.json"), "--csv", str(folder / "run"),
        *FAST_ARGS, *args,
    ]  # fmt: skip
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
    return Process(command, folder, env)


def test_workers_in_an_empty_folder_run_the_masters_conversation(installed_pack: InstalledPack, tmp_path) -> None:
    """`locust --worker -f -` and `flap --worker` from the installed pack, in an empty folder, run the master's
    conversation (given by a path relative to the master's folder): every session counted on the master."""
    master_folder = tmp_path / "master"
    master_folder.mkdir()
    shutil.copy(ROOT / "examples" / "app-chat.yaml", master_folder / "chat.yaml")
    empty = tmp_path / "worker"
    empty.mkdir()
    port = free_port()
    master = _master(master_folder, port, 2, "--ref-server-protocol", "app", "--ws-conversation", "chat.yaml")
    to_master = ["--master-host", "127.0.0.1", "--master-port", str(port)]
    workers = [
        Process([str(installed_pack.bin / "locust"), "--worker", "-f", "-", *to_master], empty, installed_pack.env()),
        Process([str(installed_pack.bin / "flap"), "--worker", *to_master], empty, installed_pack.env()),
    ]
    try:
        code = master.wait(RUN_TIMEOUT_S)
        for worker in workers:
            worker.wait(30)
    finally:
        for process in (master, *workers):
            process.kill()
    assert code == 0, master.output[-3000:]
    import csv
    import json

    with open(master_folder / "run_stats.csv") as file:
        auth = next(row for row in csv.DictReader(file) if row["Name"] == "auth" and row["Type"] == "WS")
    assert int(auth["Request Count"]) == 4 * 5  # the conversation's auth step, on both workers' users
    verdict = json.loads((master_folder / "verdict.json").read_text())
    assert verdict["connections"]["sessions_succeeded"] == 4 * 5
    assert list(empty.iterdir()) == []  # the workers needed nothing in their folder, and left nothing
    assert "cannot use the master's options" not in "".join(w.output for w in workers)


def test_a_worker_with_another_pack_version_is_refused(tmp_path) -> None:
    """A worker whose pack is another version gets one line naming both versions and exits 2; the master names
    it, does not count it, and runs with the worker of its own version."""
    port = free_port()
    master = _master(tmp_path, port, 1)
    to_master = ["--master-host", "127.0.0.1", "--master-port", str(port)]
    other = str(ROOT / "tests" / "locustfiles" / "other_pack_version.py")
    stale = Process([sys.executable, "-m", "locust", "--worker", "-f", other, *to_master], ROOT)
    good: Process | None = None
    try:
        assert stale.wait(60) == 2, stale.output[-3000:]
        good = Process(
            [sys.executable, "-m", "locust", "--worker", "-f", str(ROOT / "locustfile.py"), *to_master], ROOT
        )
        code = master.wait(RUN_TIMEOUT_S)
    finally:
        for process in (master, stale, *([good] if good else [])):
            process.kill()
    line = "the worker's flapping-pack is 0.0.0-other, the master's is "
    refusals = [row for row in stale.output.splitlines() if line in row]
    assert len(refusals) == 1 and "flapping-pack: the master refused this worker: " in refusals[0], stale.output
    assert "Traceback" not in stale.output
    assert "refused worker " in master.output and line in master.output
    assert code == 0, master.output[-3000:]
    assert '"completed": 20' in (tmp_path / "verdict.json").read_text()
