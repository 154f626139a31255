"""Talk runs the text-protocol primitives over a real connection (a hand-written echo server on 127.0.0.1).

The echo server sends back each text frame as it came, so what the client sent is what it
reads next: a heartbeat comes back as a message, a ping answered by a reply rule shows in the
server's record, a frame of two records is two messages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from scenarios.conversation import Variables
from scenarios.exchange import StepFailed, Talk
from scenarios.protocols import load_conversation_text, make_protocol
from scenarios.ws_session import WebSocketSession, WsFailure
from tests.servers.raw_ws_server import RawWsServer

MS = 0.001 * float(os.environ.get("TEST_TIME_SCALE", "1"))  # one timing unit for these tests
Row = tuple[str, WsFailure | None]


@pytest.fixture
def server() -> Iterator[RawWsServer]:
    """An echo server on 127.0.0.1:0 that records the messages of each connection."""
    with RawWsServer() as raw:
        yield raw


def _talk(server: RawWsServer, rows: list[Row], text: str = "") -> Talk:
    session = WebSocketSession(server.url, timeout_s=2.0)
    session.connect()
    conversation = load_conversation_text(text, "test.yaml")

    def report(name: str, started: float, length: int, failure: WsFailure | None) -> None:
        rows.append((name, failure))

    talk = Talk(session, make_protocol(conversation).connection(), Variables(), report, 2.0, conversation)
    talk.part = "hold"
    return talk


def test_a_frame_of_two_records_serves_two_steps(server: RawWsServer) -> None:
    """With split, the second record of a frame waits for the next expect step instead of being lost."""
    rows: list[Row] = []
    talk = _talk(server, rows, 'split: "\\u001e"')
    talk.send("first\x1esecond\x1e")
    assert talk.expect_text("first", name="one") == "first"
    assert talk.expect_text("second", name="two", timeout_ms=300) == "second"
    assert rows == [("one", None), ("two", None)]


def test_sends_are_terminated_and_pings_answered_by_reply_rules_during_an_idle_hold(server: RawWsServer) -> None:
    """The echoed PING is answered with PONG (terminated) while the connection idles; no step sees the PING."""
    rows: list[Row] = []
    talk = _talk(server, rows, 'split: "\\n"\nterminate: true\nreply: [{when_text: PING, send: PONG}]')
    talk.send("PING")
    # 0 ms: PING out; its echo comes back and is answered; 100 ms: the hold ends.
    talk.idle_until(time.perf_counter() + 100 * MS)
    records = server.snapshot()[0].messages
    assert records[:2] == ["PING\n", "PONG\n"]
    assert rows == []


def test_the_heartbeat_goes_out_on_its_period_while_the_connection_idles(server: RawWsServer) -> None:
    """Every 20 ms for a 150 ms idle: at least 5 heartbeats reach the server (lower bound only)."""
    rows: list[Row] = []
    talk = _talk(server, rows, 'heartbeat: {every_ms: 20, send: "hb-${ref}"}')
    talk.idle_until(time.perf_counter() + 150 * MS)
    beats = [message for message in server.snapshot()[0].messages if message.startswith("hb-")]
    assert len(beats) >= 5, beats
    assert beats[:3] == ["hb-1", "hb-2", "hb-3"]  # ${ref} counts the sends


def test_a_capture_feeds_later_steps_and_a_missing_one_fails_with_its_name(server: RawWsServer) -> None:
    """socket_id read from JSON inside a string is sent back as ${socket_id}; a missing path fails the step, named."""
    rows: list[Row] = []
    talk = _talk(server, rows)
    talk.send({"event": "established", "data": '{"socket_id":"12.34"}'})
    talk.expect({"event": "established", "data": {}}, name="hello", capture={"socket_id": "data.socket_id"})
    assert talk.captured["socket_id"] == "12.34"
    talk.send("id ${socket_id}")
    assert talk.expect_text("id 12.34", name="id") == "id 12.34"

    talk.send({"event": "other", "data": "{}"})
    with pytest.raises(StepFailed):
        talk.expect({"event": "other"}, name="missing", capture={"sid": "data.sid"})
    assert rows[-1][0] == "missing"
    failure = rows[-1][1]
    assert failure is not None and failure.message == "capture sid: no data.sid in the message"
