"""End to end: real `locust --headless` processes flapping against the bundled server."""

from __future__ import annotations

import csv
import re
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.support.locust_process import ROOT, LocustProcess

pytestmark = pytest.mark.e2e  # real Locust processes

TOKEN = "tok-3f9c2a7be1d04c58-SECRET"


def test_run_ends_by_itself_after_all_cycles(locust) -> None:
    """Without -t the run ends when every user has done its cycles; connect count is users x cycles."""
    run = locust("-u", "4", "--flap-cycles", "5")
    assert run.exit_code == 0, run.output[-3000:]
    connect = run.stats_row("connect")
    assert int(connect["Request Count"]) == 4 * 5
    assert int(connect["Failure Count"]) == 0
    assert int(run.stats_row("echo")["Request Count"]) == 20
    assert int(run.stats_row("close")["Request Count"]) == 20
    assert run.verdict["connections"]["cycles_completed"] == 20
    assert run.verdict["connections"]["users_finished"] == 4
    assert run.verdict["connections"]["open_connections"] == 0


def test_rejected_handshakes_show_as_stable_failures(locust) -> None:
    """Against the 503 fault mode the connect failures appear under one stable message."""
    run = locust("--ref-server-fault", "reject-503", "-u", "5", "--flap-cycles", "4")
    assert run.exit_code == 3, run.output[-3000:]
    assert 0 < int(run.stats_row("connect")["Failure Count"]) < 20
    with open(run.out_dir / "run_failures.csv") as file:
        failures = list(csv.DictReader(file))
    assert [(f["Name"], f["Error"]) for f in failures] == [("connect", "handshake rejected: HTTP 503")]


def _bundled_server_pid(output: str) -> int:
    match = re.search(r"started the bundled reference server \(pid (\d+)", output)
    assert match, output[-2000:]
    return int(match.group(1))


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("moment", ["hold", "pause"])
def test_a_stop_mid_cycle_ends_the_run_within_seconds(tmp_path: Path, stop_signal: int, moment: str) -> None:
    """Ctrl-C or SIGTERM during a hold or a pause ends the run fast, writes the verdict, leaves no server."""
    # A long hold (or a long pause) makes sure the signal lands in that step.
    timing = ["--flap-connected-ms", "3000"] if moment == "hold" else ["--flap-disconnected-ms", "3000"]
    locust = LocustProcess(["--flap-cycles", "0", *timing], tmp_path)
    try:
        server_pid = _bundled_server_pid(locust.wait_for("flapping phase", deadline_s=30))
        time.sleep(0.5)  # 0.5 s into the flapping: users are connecting, holding or pausing
        stopped_at = time.monotonic()
        locust.process.send_signal(stop_signal)
        locust.wait(timeout_s=15)
        assert time.monotonic() - stopped_at < 10
    finally:
        locust.kill()
    verdict_file = tmp_path / "verdict.json"
    assert verdict_file.exists()
    assert '"interrupted": true' in verdict_file.read_text()
    deadline = time.monotonic() + 5
    while psutil.pid_exists(server_pid) and psutil.Process(server_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the bundled server outlived Locust"
        time.sleep(0.1)


@pytest.mark.parametrize("place", ["header", "query"])
def test_the_token_reaches_the_server_and_no_output(locust, place: str) -> None:
    """The bundled server requires the token, connects succeed, and the token is in no output or file."""
    run = locust("--ws-auth-token", TOKEN, "--ws-auth-in", place, "--loglevel", "DEBUG", "--html", "report.html")
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("connect")["Request Count"]) == 20
    assert TOKEN not in run.output
    written = list(run.out_dir.iterdir()) + [ROOT / "report.html"]
    try:
        for path in written:
            if path.is_file():
                assert TOKEN not in path.read_text(errors="replace"), path.name
    finally:
        (ROOT / "report.html").unlink(missing_ok=True)


def test_a_token_from_the_environment_reaches_a_server_that_requires_it(locust, start_server) -> None:
    """LOCUST_WS_AUTH_TOKEN is sent: a server requiring it accepts every connect and refuses them without it."""
    server = start_server(env={"REFSERVER_AUTH_TOKEN": TOKEN})
    args = ["--host", server.url, "--flap-cycles", "2", "-u", "2"]
    with_token = locust(*args, env={"LOCUST_WS_AUTH_TOKEN": TOKEN})
    assert with_token.exit_code == 0, with_token.output[-3000:]
    assert with_token.stats_row("connect")["Request Count"] == "4"
    assert with_token.stats_row("connect")["Failure Count"] == "0"
    assert TOKEN not in with_token.output
    without_token = locust(*args, env={"LOCUST_WS_AUTH_TOKEN": ""})
    assert without_token.exit_code == 3, without_token.output[-3000:]
    assert without_token.stats_row("connect")["Failure Count"] == "4"
    assert "handshake rejected: HTTP 401" in (without_token.out_dir / "run_failures.csv").read_text()


def test_a_slow_ramp_up_does_not_replace_finished_users(locust) -> None:
    """Users that finish while Locust still ramps up are not replaced: exactly users x cycles connects."""
    run = locust("-u", "6", "-r", "3", "--flap-cycles", "3")
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("connect")["Request Count"]) == 6 * 3
    assert run.verdict["connections"]["users_started"] == 6
