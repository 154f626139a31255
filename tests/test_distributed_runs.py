"""Distributed runs judge once, on the master, from every worker's numbers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.raw_ws_server import RawWsServer
from tests.support.e2e_helpers import free_port, worker_processes
from tests.support.locust_process import ROOT, LocustProcess

pytestmark = pytest.mark.e2e  # real Locust processes


def test_four_worker_processes_pass_against_a_healthy_server(locust) -> None:
    """--processes 4 with 12 users: every cycle counted on the master, one monitor, exit 0."""
    run = locust(*worker_processes(4), "-u", "12", "-r", "12")
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("connect")["Request Count"]) == 12 * 5
    verdict = run.verdict
    assert verdict["cycles"]["completed"] == 60
    assert verdict["connections"]["users_finished"] == 12
    assert run.output.count("flapping-pack: monitoring ") == 1
    # One monitor sampling every 0.2 s: the sample count fits the run's length, four would not.
    times = [float(row.split(",")[0]) for row in (run.out_dir / "resources.csv").read_text().splitlines()[1:]]
    assert len(times) <= (times[-1] - times[0]) / 0.2 + 2


@pytest.mark.parametrize("settle_s", ["1", "0"])
def test_every_worker_row_reaches_the_master_when_workers_report_late(locust, settle_s: str) -> None:
    """Workers that send no report during the run and take 2 s to stop: the master asks each
    for its final report before the run ends, so every cycle is a row (Locust alone loses them).
    With no settle, the request still waits a tick for the users to be stopped."""
    late_workers = str(ROOT / "tests" / "locustfiles" / "late_worker_reports.py")
    run = locust("-f", late_workers, *worker_processes(2), "-u", "4", "-r", "4", "--settle-s", settle_s)
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("connect")["Request Count"]) == 4 * 5
    assert run.verdict["cycles"]["completed"] == 20
    assert "no final report" not in run.output


def test_a_run_ends_with_a_warning_when_workers_never_send_their_final_report(locust) -> None:
    """Workers that ignore the request: the master waits its bounded time, names them, and ends."""
    late_workers = str(ROOT / "tests" / "locustfiles" / "late_worker_reports.py")
    run = locust("-f", late_workers, *worker_processes(2), "-u", "4", "-r", "4", env={"LATE_WORKERS_SILENT": "1"})
    assert run.exit_code == 0, run.output[-3000:]
    assert "no final report within 5 s from worker(s) " in run.output
    assert run.verdict["cycles"]["completed"] == 20  # the counts come with the progress messages


def test_four_worker_processes_fail_against_a_leaking_server(locust) -> None:
    """The master's verdict uses every worker's connections: 60 leaked fds fail the run."""
    run = locust(*worker_processes(4), "-u", "12", "-r", "12", "--ref-server-fault", "leak-fds")
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("fd_growth")["status"] == "fail"
    assert run.check("fd_growth")["observed"] >= 60


def test_a_separate_master_and_two_workers_pass(tmp_path: Path) -> None:
    """A master started with --master and two --worker processes judge the run once, exit 0."""
    port = str(free_port())
    master = LocustProcess(
        ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--expect-workers", "2", "-u", "6"],
        tmp_path,
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "locustfile.py"),
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                port,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        code = master.wait(timeout_s=90)
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        master.kill()
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
    assert code == 0, master.output[-3000:]
    verdict = (tmp_path / "verdict.json").read_text()
    assert '"completed": 30' in verdict
    assert master.output.count("VERDICT: PASS") == 1


def test_workers_speak_the_masters_conversation(locust) -> None:
    """--processes 2 with a conversation file: every worker's users run its steps; sessions counted on the master."""
    conversation = str(ROOT / "examples" / "app-chat.yaml")
    run = locust(*worker_processes(2), "-u", "4", "--ref-server-protocol", "app", "--ws-conversation", conversation)
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("auth")["Request Count"]) == 4 * 5
    assert run.verdict["connections"]["sessions_succeeded"] == 4 * 5
    assert run.check("session_success_pct")["status"] == "pass"


def test_worker_and_user_numbers_name_every_user_of_a_distributed_run_once(locust, tmp_path: Path) -> None:
    """--processes 2: users are numbered per worker, and ${worker}-${user} tells the workers' users apart."""
    conversation = tmp_path / "who.yaml"
    conversation.write_text('hold:\n  - send: "who ${worker}-${user}"\n')
    with RawWsServer() as server:
        run = locust(
            *worker_processes(2), "--host", server.url, "-u", "4", "-r", "4", "--ws-conversation", str(conversation)
        )
        seen = server.snapshot()
    assert run.exit_code == 0, run.output[-3000:]
    names = {m.group(1) for c in seen for message in c.messages if (m := re.match(r"who (\d+-\d+)$", message))}
    # Two users on each worker process; the recovery probe speaks as user -u (4) from the master.
    assert names - {"0-4"} == {"0-0", "0-1", "1-0", "1-1"}, names
