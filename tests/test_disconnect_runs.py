"""End to end: disconnect styles and storm mode in real `locust --headless` processes."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.servers.raw_ws_server import CLOSE_FRAME, RawWsServer
from tests.support.locust_process import LocustProcess

pytestmark = pytest.mark.e2e  # real Locust processes


@pytest.mark.parametrize(
    ("style", "exit_code", "status"), [("abrupt", 3, "fail"), ("reset", 3, "fail"), ("clean", 0, "pass")]
)
def test_leaked_agents_are_caught_when_clients_drop_without_a_close_frame(
    locust, style: str, exit_code: int, status: str
) -> None:
    """The leak-agents bug shows with abrupt and reset disconnects (exit 3) and stays hidden by clean ones."""
    run = locust("--ref-server-fault", "leak-agents", "--flap-disconnect", style)
    assert run.exit_code == exit_code, run.output[-3000:]
    assert run.check("agents_growth")["status"] == status, run.check("agents_growth")
    name = "close" if style == "clean" else style
    assert int(run.stats_row(name)["Request Count"]) == 4 * 5


def test_a_mix_shows_one_stats_row_per_style(locust) -> None:
    """Each style of a mix has its own WS row; handshake aborts are not counted as connects."""
    run = locust("--flap-disconnect", "clean,abrupt,reset,half-open,handshake-abort", "--flap-seed", "7")
    assert run.exit_code == 0, run.output[-3000:]
    counts = {
        name: int(run.stats_row(name)["Request Count"])
        for name in ("connect", "close", "abrupt", "reset", "half-open", "handshake-abort")
    }
    assert all(counts.values()), counts
    assert counts["connect"] + counts["handshake-abort"] == 4 * 5
    assert counts["close"] + counts["abrupt"] + counts["reset"] + counts["half-open"] == counts["connect"]
    assert int(run.stats_row("connect")["Failure Count"]) == 0
    assert run.verdict["connections"]["open_connections"] == 0
    assert run.verdict["connections"]["cycles_completed"] == 4 * 5
    # A half-open connection is left for the pause (50 ms, less a late wake-up) before it is dropped.
    assert float(run.stats_row("half-open")["Average Response Time"]) >= 25


def test_in_a_storm_every_user_connects_and_drops_on_the_shared_grid(locust) -> None:
    """With --flap-storm every handshake starts on a boundary of the hold + pause grid, every close a hold later."""
    period_s, hold_s = 0.4, 0.2
    with RawWsServer() as server:
        # -r 3: two spawn batches 1 s apart (half a period off the grid): storm mode brings them together.
        run = locust(
            "--host", server.url, "--flap-storm", "-u", "6", "-r", "3", "--flap-cycles", "6",
            "--flap-connected-ms", "200", "--flap-disconnected-ms", "200",
        )  # fmt: skip
        seen = server.snapshot()
    assert run.exit_code == 0, run.output[-3000:]
    # The recovery probe speaks as the user after the last one (6): its connection is not on the grid.
    flapping = [c for c in seen if c.messages and c.messages[0].startswith("flap ") and c.messages[0] != "flap 6:0"]
    assert len(flapping) == 6 * 6
    users_on_boundary: Counter[int] = Counter()
    for connection in flapping:
        assert connection.request_at is not None and connection.ended_at is not None
        # The grid is the multiples of the period since the epoch: a handshake lands just after one
        # (without storm mode the second batch would arrive about half a period off) ...
        since_boundary = connection.request_at % period_s
        assert since_boundary < 0.1, since_boundary
        boundary = connection.request_at - since_boundary
        users_on_boundary[round(boundary / period_s)] += 1
        # ... and its close frame follows that boundary by the hold, whatever the handshake took.
        assert connection.ending == CLOSE_FRAME
        assert hold_s - 0.01 <= connection.ended_at - boundary < hold_s + 0.1
    assert max(users_on_boundary.values()) == 6  # all six users together on the same boundaries


def _bundled_server_pid(output: str) -> int:
    match = re.search(r"started the bundled reference server \(pid (\d+)", output)
    assert match, output[-2000:]
    return int(match.group(1))


@pytest.mark.parametrize(
    "moment",
    [
        # A half-open connection left for a 3 s pause.
        ["--flap-disconnect", "half-open", "--flap-disconnected-ms", "3000"],
        # Storm users waiting for a boundary of a 5 s grid.
        ["--flap-storm", "--flap-disconnected-ms", "5000"],
        # Handshakes that take 200 ms, between holds and pauses of 10 ms.
        ["--ref-server-fault", "slow-handshake", "--flap-connected-ms", "10", "--flap-disconnected-ms", "10"],
    ],
    ids=["half-open", "storm-wait", "mid-connect"],
)
def test_a_stop_while_half_open_waiting_or_connecting_ends_the_run_fast(tmp_path: Path, moment: list[str]) -> None:
    """SIGTERM while users hold half-open sockets, wait for the storm grid or connect ends the run within seconds."""
    locust = LocustProcess(["--flap-cycles", "0", *moment], tmp_path)
    try:
        server_pid = _bundled_server_pid(locust.wait_for("flapping phase", deadline_s=30))
        _stop_within_seconds(locust)
    finally:
        locust.kill()
    assert '"interrupted": true' in (tmp_path / "verdict.json").read_text()
    deadline = time.monotonic() + 5
    while psutil.pid_exists(server_pid) and psutil.Process(server_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the bundled server outlived Locust"
        time.sleep(0.1)


def test_a_stop_while_closing_ends_the_run_fast(tmp_path: Path) -> None:
    """SIGTERM while users wait (up to --ws-timeout-s) for a close frame that never comes ends the run at once."""
    with RawWsServer(answer_close=False) as server:
        locust = LocustProcess(["--host", server.url, "--flap-cycles", "0", "--flap-connected-ms", "10"], tmp_path)
        try:
            locust.wait_for("flapping phase", deadline_s=30)
            _stop_within_seconds(locust)
        finally:
            locust.kill()
        stuck = [c for c in server.snapshot() if c.ending == CLOSE_FRAME]
    assert stuck, "no user was waiting for the server's close frame"
    assert '"interrupted": true' in (tmp_path / "verdict.json").read_text()


def _stop_within_seconds(locust: LocustProcess) -> None:
    time.sleep(0.5)  # 0.5 s into the flapping: users are in the step under test
    stopped_at = time.monotonic()
    locust.process.send_signal(signal.SIGTERM)
    locust.wait(timeout_s=15)
    assert time.monotonic() - stopped_at < 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flap-disconnect", "clean,teleport"], "--flap-disconnect: unknown disconnect style 'teleport'"),
        (["--flap-disconnect", "clean:0"], "--flap-disconnect: the disconnect weights add up to zero"),
        (
            ["--flap-storm", "--flap-connected-ms", "0", "--flap-disconnected-ms", "0"],
            "--flap-storm: needs --flap-connected-ms or --flap-disconnected-ms above 0",
        ),
    ],
)
def test_a_bad_disconnect_or_storm_option_stops_before_any_load(locust, args: list[str], message: str) -> None:
    """A bad mix or a storm without a period: exit 2 with one line naming the option."""
    run = locust(*args, timeout_s=60)
    assert run.exit_code == 2, run.output[-3000:]
    assert message in run.output


def test_the_probe_and_steady_users_speak_as_numbers_after_the_last_user(locust) -> None:
    """${user}: flapping users 0..-u-1 in every round, the probe -u, steady users after it; none negative or shared."""
    with RawWsServer() as server:
        run = locust(
            "--host", server.url, "-u", "3", "-r", "3", "--flap-cycles", "2", "--steady-users", "1",
            "--flap-rounds", "2",  # round 2's fresh users take round 1's numbers again
        )  # fmt: skip
        seen = server.snapshot()
    assert run.exit_code == 0, run.output[-3000:]
    numbers_by_connection = [
        {int(m.group(1)) for message in c.messages if (m := re.match(r"flap (-?\d+):", message))} for c in seen
    ]
    numbers = set().union(*numbers_by_connection)
    # Every connection speaks as one user; the steady user keeps its number over its echoes.
    assert all(len(found) <= 1 for found in numbers_by_connection)
    assert numbers == {0, 1, 2, 3, 4}, numbers  # three flapping users, the probe (3), the steady user (4)
    assert run.verdict["connections"]["users_finished"] == 6  # two rounds of three users
