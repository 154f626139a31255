"""Continuity end to end: no stream message lost across reconnects, judged from real runs against real servers.

The bundled server's app mode keeps a stream per user that goes on while the user is away;
every reconnect resumes after the last number it got (examples/app-stream.yaml). A healthy
server replays what was missed; one with the lose-on-resume fault replays half of it.
"""

from __future__ import annotations

import re
import socket

from tests.support.locust_process import ROOT

APP_STREAM = str(ROOT / "examples" / "app-stream.yaml")
EVERY_DROP = "clean:1,abrupt:1,reset:1,half-open:1"
RECONNECTS = 4 * (5 - 1)  # 4 users of 5 cycles (the tests' defaults): every session after a user's first resumes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_bundled_app_stream_loses_nothing_across_every_kind_of_drop(locust) -> None:
    """Clean, abrupt, reset and half-open drops, each reconnect resuming: 0 lost, the run passes."""
    run = locust("--ref-server-protocol", "app", "--ws-conversation", APP_STREAM, "--flap-disconnect", EVERY_DROP)
    assert run.exit_code == 0, run.output[-3000:]
    check = run.check("messages_lost")
    assert check["status"] == "pass"
    assert check["observed"] == 0
    assert check["detail"].startswith(f"no message lost in {RECONNECTS} reconnects (")
    counts = run.verdict["connections"]["continuity"]
    assert counts["resumes_asked"] == RECONNECTS
    assert counts["stream_messages"] > 0
    assert run.check("messages_duplicated")["status"] == "skip"  # off by default, still counted
    assert run.check("messages_duplicated")["observed"] == 0


def test_a_server_that_replays_only_part_of_what_was_missed_fails_messages_lost(locust) -> None:
    """--ref-server-fault lose-on-resume: each resume loses the older half of the missed messages; FAIL."""
    run = locust(
        "--ref-server-protocol", "app", "--ws-conversation", APP_STREAM, "--ref-server-fault", "lose-on-resume",
        "--flap-disconnect", EVERY_DROP,
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    check = run.check("messages_lost")
    assert check["status"] == "fail"
    assert check["observed"] > 0
    assert re.fullmatch(rf"\d+ messages? lost in \d+ of {RECONNECTS} reconnects \(.*\) \(limit 0\)", check["detail"])
    junit = (run.out_dir / "verdict.junit.xml").read_text()
    assert 'name="messages_lost"' in junit


def test_two_worker_processes_add_their_stream_counts_on_the_master(locust) -> None:
    """--processes 2: each worker's users count their own streams; the master judges the sum."""
    port = str(_free_port())
    run = locust(
        "--processes", "2", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--master-host", "127.0.0.1", "--master-port", port,
        "--ref-server-protocol", "app", "--ws-conversation", APP_STREAM, "--flap-disconnect", "abrupt",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    counts = run.verdict["connections"]["continuity"]
    assert counts["resumes_asked"] == RECONNECTS  # two workers' users, added up
    assert counts["chains"] == 4
    assert run.check("messages_lost")["status"] == "pass"
