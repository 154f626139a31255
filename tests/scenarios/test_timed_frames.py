"""Frames due by time (MQTT's PINGREQ) go out while a connection idles; the protocol failing fails the hold."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from scenarios.conversation import Variables
from scenarios.exchange import StepFailed, Talk
from scenarios.handshake import adopt
from scenarios.protocols import ConnectionFraming, Frame
from scenarios.ws_session import WebSocketSession
from tests.support.ws_frames import FrameReader

MS = 0.001
PERIOD_S = 60 * MS  # the fake protocol's ping period
TIMEOUT_S = 2.0
BINARY = 0x2


class PingEvery(ConnectionFraming):
    """A timed framing: a binary ping every PERIOD_S; after `fail_after` pings the session has ended."""

    timed = True

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.due = time.perf_counter() + PERIOD_S  # when the next ping goes out
        self.pings = 0  # pings sent
        self.fail_after = fail_after  # end the session after this many pings; None: never

    def tick(self, now_s: float) -> tuple[Frame, ...]:
        if self.fail_after is not None and self.pings >= self.fail_after:
            self.ended = "no pong within the period"
            return ()
        self.pings += 1
        self.due = now_s + PERIOD_S
        return (b"\x01",)

    def next_tick_s(self) -> float | None:
        return None if self.ended else self.due


@pytest.fixture
def pair() -> Iterator[tuple[WebSocketSession, socket.socket]]:
    """An adopted client session and the server's end of it."""
    near, far = socket.socketpair()
    far.settimeout(TIMEOUT_S)
    session = WebSocketSession("ws://127.0.0.1/", timeout_s=TIMEOUT_S)
    session._ws = adopt(near, 101, None, b"", TIMEOUT_S)
    try:
        yield session, far
    finally:
        near.close()
        far.close()


def test_timed_frames_go_out_during_a_quiet_hold(pair) -> None:
    """A 5-period hold with a silent server: at least 4 pings, each a binary frame."""
    session, far = pair
    framing = PingEvery()
    rows: list = []
    talk = Talk(session, framing, Variables(), lambda *row: rows.append(row), TIMEOUT_S)
    talk.part = "hold"
    started = time.perf_counter()
    talk.idle_until(started + 5 * PERIOD_S)
    assert time.perf_counter() - started >= 5 * PERIOD_S
    assert framing.pings >= 4
    reader = FrameReader(lambda: far.recv(4096), b"")
    assert [reader.next_frame() for _ in range(4)] == [(BINARY, b"\x01")] * 4
    assert rows == []


def test_the_protocols_session_ending_by_time_fails_the_hold_by_name(pair) -> None:
    """After 2 pings the framing says the session ended: the hold row fails with its reason, before the hold's end."""
    session, _far = pair
    rows: list = []
    talk = Talk(session, PingEvery(fail_after=2), Variables(), lambda *row: rows.append(row), TIMEOUT_S)
    talk.part = "hold"
    with pytest.raises(StepFailed):
        talk.idle_until(time.perf_counter() + 50 * PERIOD_S)
    assert [(name, failure.message) for name, _, _, failure in rows] == [("hold", "no pong within the period")]
    assert not session.is_open
