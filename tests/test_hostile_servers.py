"""Against misbehaving servers the pack neither hangs nor crashes, and keeps its results.

Each server (`tests/servers/hostile_servers.py`) is a process of its own on 127.0.0.1, found by the
pack's monitor through the port of --host. Users flap with no cycle limit, so only -t ends
the run: it must end in time, count the failures under stable messages, write every
result file, and fail the verdict (exit code 3).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from tests.servers import hostile_servers as hostile
from tests.support.locust_process import LocustRun, run_locust

pytestmark = pytest.mark.e2e  # real Locust processes

RUN_TIME_S = 5  # -t: baseline 1 s, flapping until 3 s, settle (and the 1 s recovery probe) to 5 s
OVERRUN_S = 12  # Locust's start-up and shutdown on a slow machine, on top of -t
WS_TIMEOUT_S = "1"  # every WebSocket operation; hanging servers cost this much per step
RESULT_FILES = ("verdict.json", "verdict.junit.xml", "resources.csv", "run_stats.csv", "run_failures.csv")

# mode -> (the failures, as (request name, message) rows of run_failures.csv; the checks that fail)
EXPECTED: dict[str, tuple[set[tuple[str, str]], set[str]]] = {
    hostile.SILENT: (
        {("connect", "connect timed out"), ("recovery", "connect timed out")},
        {"connect_success_pct", "recovery_ms"},
    ),
    hostile.HTTP_200: (
        {("connect", "handshake rejected: HTTP 200"), ("recovery", "handshake rejected: HTTP 200")},
        {"connect_success_pct", "recovery_ms"},
    ),
    hostile.BAD_ACCEPT: (
        {
            ("connect", "handshake failed: bad Sec-WebSocket-Accept"),
            ("recovery", "handshake failed: bad Sec-WebSocket-Accept"),
        },
        {"connect_success_pct", "recovery_ms"},
    ),
    hostile.GARBAGE_FRAMES: (
        {("echo", "protocol error during hold"), ("recovery", "protocol error during hold")},
        {"session_success_pct", "recovery_ms"},
    ),
    hostile.HUGE_FRAME: (
        {("echo", "frame too large during hold"), ("recovery", "frame too large during hold")},
        {"session_success_pct", "recovery_ms"},
    ),
    hostile.SLOW_FRAME: (
        {("echo", "expect timed out"), ("recovery", "expect timed out")},
        {"session_success_pct", "recovery_ms"},
    ),
    hostile.NO_CLOSE_REPLY: (
        {("close", "close timed out"), ("recovery", "service broke again after recovering: close timed out")},
        {"session_success_pct", "recovery_ms"},
    ),
    hostile.CLOSE_MID_HANDSHAKE: (
        {
            ("connect", "connection closed by server during connect"),
            ("recovery", "connection closed by server during connect"),
        },
        {"connect_success_pct", "recovery_ms"},
    ),
    hostile.RESET_ALL: (
        {("connect", "connection reset during connect"), ("recovery", "connection reset during connect")},
        {"connect_success_pct", "recovery_ms"},
    ),
    hostile.BLACKHOLE: (
        {("connect", "connect timed out"), ("recovery", "connect timed out")},
        {"connect_success_pct", "recovery_ms"},
    ),
}


def _failures(run: LocustRun) -> set[tuple[str, str]]:
    with open(run.out_dir / "run_failures.csv") as file:
        return {(row["Name"], row["Error"]) for row in csv.DictReader(file)}


def _failed_checks(run: LocustRun) -> set[str]:
    return {check["name"] for check in run.verdict["checks"] if check["status"] == "fail"}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_a_hostile_server_fails_the_run_in_time_with_stable_failures(tmp_path: Path, mode: str) -> None:
    """The run ends by -t, every result file is written, failures have stable names, exit code 3."""
    expected_failures, expected_checks = EXPECTED[mode]
    with hostile.HostileProcess(mode) as server:
        started = time.monotonic()
        run = run_locust(
            [
                "--host", server.url, "--flap-cycles", "0", "-u", "2", "-r", "2", "-t", str(RUN_TIME_S),
                "--ws-timeout-s", WS_TIMEOUT_S, "--recovery-timeout-s", "1", "--settle-s", "2",
            ],
            tmp_path,
            timeout_s=RUN_TIME_S + 60,
        )  # fmt: skip
        took_s = time.monotonic() - started
    assert run.exit_code == 3, run.output[-3000:]
    assert took_s < RUN_TIME_S + OVERRUN_S, f"{took_s:.1f} s"
    assert "Traceback" not in run.output, run.output[-3000:]
    for name in RESULT_FILES:
        assert (tmp_path / name).is_file(), name
    assert _failures(run) == expected_failures
    assert _failed_checks(run) == expected_checks, run.verdict["checks"]
    assert run.verdict["interrupted"] is False
    assert f"pid {server.pid}" in run.verdict["monitor"]["watching"]  # the monitor found the server by its port
    assert run.check("server_alive")["status"] == "pass"


def test_a_server_restarted_on_its_port_is_followed_and_reported(tmp_path: Path, start_server) -> None:
    """A server killed and restarted on the same port: the monitor follows the new pid, the run
    goes on, and server_alive fails with the restart."""
    from tests.support.locust_process import LocustProcess

    first = start_server()
    port = str(first.port)
    locust = LocustProcess(
        ["--host", first.url, "--server-port", port, "--flap-cycles", "0", "-u", "2", "-t", "8",
         "--ws-timeout-s", WS_TIMEOUT_S],
        tmp_path,
    )  # fmt: skip
    try:
        locust.wait_for("flapping phase", deadline_s=30)
        time.sleep(1)  # 1 s into the flapping
        first.process.kill()
        first.process.wait(timeout=5)
        second = start_server("--port", port)
        code = locust.wait(timeout_s=40)
    finally:
        locust.kill()
    output = locust.output
    assert code == 3, output[-3000:]
    verdict = LocustRun(code, output, tmp_path).verdict
    assert verdict["stop_reason"] is None  # the run went on to its end
    alive = next(c for c in verdict["checks"] if c["name"] == "server_alive")
    assert alive["status"] == "fail"
    assert f"server restarted: pid changed {first.pid} → {second.pid}" in alive["detail"]
    assert f"the server restarted: pid {first.pid} → {second.pid}" in output
    with open(tmp_path / "run_failures.csv") as file:
        errors = {row["Error"] for row in csv.DictReader(file)}
    assert "connection refused" in errors  # connects while the server was down


@pytest.mark.parametrize(
    ("mode", "message"),
    [(hostile.HUGE_FRAME, "frame too large during hold"), (hostile.SLOW_FRAME, "expect timed out")],
)
def test_an_echo_is_bounded_as_a_whole_not_per_read(mode: str, message: str) -> None:
    """A 100 MB frame is refused unread; a frame trickled byte by byte (each read in time) times out."""
    from scenarios.ws_session import WebSocketSession, WsFailure
    from tests.servers.ws_echo import echo

    timeout_s = 0.5
    with hostile.HostileServer(mode) as server:
        session = WebSocketSession(server.url, timeout_s=timeout_s)
        session.connect()
        started = time.monotonic()
        with pytest.raises(WsFailure) as failure:
            echo(session, "hello")
        took_s = time.monotonic() - started
        session.abort()
    assert failure.value.message == message
    assert took_s < timeout_s + 1.0
