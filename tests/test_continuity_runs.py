"""Continuity end to end: no stream message lost across reconnects, judged from real runs against real servers.

The bundled server's app mode keeps a stream per user that goes on while the user is away;
every reconnect resumes after the last number it got (examples/app-stream.yaml). A healthy
server replays what was missed; one with the lose-on-resume fault replays half of it.
A real socket.io server streams to each user's room; with connection state recovery a
reconnect gets back what it missed, without it the ticks sent meanwhile are lost. On a real
MQTT broker (aedes), the pack's own feeder (feed: in the file) publishes numbered QoS 1 messages
to each user's topic: persistent sessions keep them for the user, clean starts lose them.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.servers.mqtt_broker import start_broker
from tests.servers.socketio_recovery import server_ready
from tests.support.e2e_helpers import worker_processes
from tests.support.locust_process import ROOT
from tests.support.streams import MQTT_STREAM, assert_lost_and_nothing_resumed, mqtt_stream_with_clean_starts
from tests.support.unavailable import unavailable

APP_STREAM = str(ROOT / "examples" / "app-stream.yaml")
EVERY_DROP = "clean:1,abrupt:1,reset:1,half-open:1"
RECONNECTS = 4 * (5 - 1)  # 4 users of 5 cycles (the tests' defaults): every session after a user's first resumes


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


def test_a_server_that_replays_only_part_of_what_was_missed_fails_messages_lost(locust, tmp_path: Path) -> None:
    """--ref-server-fault lose-on-resume: each resume loses the older half of the missed messages; FAIL."""
    run = locust(
        "--ref-server-protocol", "app", "--ws-conversation", APP_STREAM, "--ref-server-fault", "lose-on-resume",
        "--flap-disconnect", EVERY_DROP, "--html", str(tmp_path / "report.html"),
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    check = run.check("messages_lost")
    assert check["status"] == "fail"
    assert check["observed"] > 0
    assert re.fullmatch(rf"\d+ messages? lost in \d+ of {RECONNECTS} reconnects \(.*\) \(limit 0\)", check["detail"])
    junit = (run.out_dir / "verdict.junit.xml").read_text()
    assert 'name="messages_lost"' in junit
    report = (tmp_path / "report.html").read_text()
    assert "messages_lost" in report and '"messages_lost":[' in report  # the verdict table and the chart series


def test_two_worker_processes_add_their_stream_counts_on_the_master(locust) -> None:
    """--processes 2: each worker's users count their own streams; the master judges the sum."""
    run = locust(
        *worker_processes(2),
        "--ref-server-protocol", "app", "--ws-conversation", APP_STREAM, "--flap-disconnect", "abrupt",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    counts = run.verdict["connections"]["continuity"]
    assert counts["resumes_asked"] == RECONNECTS  # two workers' users, added up
    assert counts["chains"] == 4
    assert run.check("messages_lost")["status"] == "pass"


# --- Socket.IO's connection state recovery, on a real socket.io server (Node.js) ---------------------------

SOCKETIO_STREAM = str(ROOT / "examples" / "socketio-stream.yaml")
DROPS = "abrupt:1,reset:1,half-open:1"  # a clean disconnect ends the session on purpose: no recovery then


def _socketio_server(start_app_server, *args: str):
    why_not = server_ready()
    if why_not is not None:
        unavailable(why_not)
    return start_app_server("socketio_recovery", *args)


def test_socket_io_with_connection_state_recovery_loses_nothing(start_app_server, locust) -> None:
    """Abrupt, reset and half-open drops: every reconnect recovers its session and what it missed; PASS."""
    server = _socketio_server(start_app_server, "--recovery")
    run = locust("--host", server.url, "--ws-conversation", SOCKETIO_STREAM, "--flap-disconnect", DROPS)
    assert run.exit_code == 0, run.output[-3000:]
    counts = run.verdict["connections"]["continuity"]
    assert counts["resumes_asked"] == RECONNECTS
    # A half-open connection is let go right before the next connect: a reconnect that reaches
    # the server before it has handled the old connection's end finds no session to recover yet
    # (Socket.IO keeps one from the disconnect on). On a loaded machine, now and then one.
    assert counts["sessions_resumed"] >= RECONNECTS - 2, counts
    assert counts["messages_lost"] == 0
    check = run.check("messages_lost")
    assert check["status"] == "pass"
    resumed = counts["sessions_resumed"]
    if resumed == RECONNECTS:
        assert check["detail"].startswith(f"the server resumed {resumed} of {RECONNECTS} sessions; no message lost")
    else:  # the words of a partial resume: what was lost first, then how many the server resumed
        expected = f"no message lost in {RECONNECTS} reconnects; the server resumed {resumed} of {RECONNECTS} sessions"
        assert check["detail"].startswith(expected), check["detail"]


def test_socket_io_without_recovery_loses_what_it_sent_meanwhile_and_says_why(start_app_server, locust) -> None:
    """The same server without connectionStateRecovery: ticks sent while a user was away are lost; FAIL."""
    server = _socketio_server(start_app_server)
    run = locust("--host", server.url, "--ws-conversation", SOCKETIO_STREAM, "--flap-disconnect", DROPS)
    assert_lost_and_nothing_resumed(run, RECONNECTS)


def test_a_clean_socket_io_disconnect_ends_the_session_on_purpose(start_app_server, locust) -> None:
    """Clean disconnects only: no reconnect asks to resume, each session is judged alone, and the run passes."""
    server = _socketio_server(start_app_server, "--recovery")
    run = locust("--host", server.url, "--ws-conversation", SOCKETIO_STREAM, "--flap-disconnect", "clean")
    assert run.exit_code == 0, run.output[-3000:]
    counts = run.verdict["connections"]["continuity"]
    assert (counts["resumes_asked"], counts["chains"]) == (0, 4 * 5)
    assert "no reconnect tried to resume its session" in run.check("messages_lost")["detail"]


# --- MQTT persistent sessions, on a real broker (aedes) ------------------------------------------------------

MQTT_DROPS = "clean:1,abrupt:1,reset:1"  # a clean MQTT DISCONNECT keeps a persistent session


def test_mqtt_persistent_sessions_keep_what_was_published_while_away(start_app_server, locust) -> None:
    """clean_start: false under a stable client id, QoS 1: the broker keeps each session and delivers the rest."""
    broker = start_broker(start_app_server)
    # aedes now and then closes a session that takes over the one its client just dropped (a race of its
    # own, which session_success_pct reports), and node's heap grows as the broker starts routing the
    # feed (which begins with the flapping): this test judges continuity alone.
    run = locust(
        "--host", broker.url, "--ws-conversation", str(MQTT_STREAM), "--flap-disconnect", MQTT_DROPS,
        "--min-session-success-pct", "0", "--max-memory-growth-mb", "200",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    connects, publishes = run.stats_row("feed-connect"), run.stats_row("feed-publish")  # the pack's own feeder
    assert int(connects["Request Count"]) >= 1 and int(publishes["Request Count"]) > 0, (connects, publishes)
    assert connects["Failure Count"] == publishes["Failure Count"] == "0", (connects, publishes)
    counts = run.verdict["connections"]["continuity"]
    assert counts["resumes_asked"] == RECONNECTS
    assert counts["sessions_resumed"] == RECONNECTS  # CONNACK's session present, every time
    assert counts["messages_lost"] == 0
    assert run.check("messages_lost")["status"] == "pass"


def test_mqtt_clean_starts_lose_what_was_published_while_away(start_app_server, locust, tmp_path: Path) -> None:
    """clean_start: true (resume: true, so reconnects are judged as one chain): the broker kept nothing; FAIL."""
    broker = start_broker(start_app_server)
    conversation = mqtt_stream_with_clean_starts(tmp_path)
    run = locust("--host", broker.url, "--ws-conversation", str(conversation), "--flap-disconnect", "abrupt")
    assert_lost_and_nothing_resumed(run, RECONNECTS)
