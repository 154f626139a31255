"""Reads of the server's frames: bounded by their Deadline (not the socket's timeout), which they leave as it was."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import gevent
import pytest

from scenarios.handshake import AdoptedWebSocket, adopt
from scenarios.ws_session import Deadline, WebSocketSession, WsFailure, _recv_message
from tests.support.ws_frames import frame

SOCKET_TIMEOUT_S = 0.05
DEADLINE_S = 0.3


@pytest.fixture
def adopted() -> Iterator[tuple[AdoptedWebSocket, socket.socket]]:
    """An adopted connection whose socket times out after SOCKET_TIMEOUT_S, and the server's end of it."""
    near, far = socket.socketpair()
    try:
        yield adopt(near, 101, None, b"", SOCKET_TIMEOUT_S), far
    finally:
        near.close()
        far.close()


def test_a_silent_server_is_waited_for_until_the_deadline_not_the_sockets_timeout(adopted) -> None:
    ws, _far = adopted
    started = time.perf_counter()
    with pytest.raises(WsFailure, match="^expect timed out$"), Deadline(DEADLINE_S, "expect timed out"):
        _recv_message(ws, "hold")
    assert time.perf_counter() - started >= DEADLINE_S
    assert ws.sock.gettimeout() == SOCKET_TIMEOUT_S


def test_a_read_killed_midway_leaves_the_sockets_timeout_as_it_was(adopted) -> None:
    ws, _far = adopted

    def read() -> None:
        with Deadline(DEADLINE_S, "expect timed out"):
            _recv_message(ws, "hold")

    reader = gevent.spawn(read)
    gevent.sleep(SOCKET_TIMEOUT_S / 2)
    reader.kill(timeout=1.0)
    assert reader.dead
    assert ws.sock.gettimeout() == SOCKET_TIMEOUT_S


def test_a_message_is_read_and_a_ping_answered(adopted) -> None:
    ws, far = adopted
    far.sendall(frame(0x9, b"beat") + frame(0x1, b"hello"))
    with Deadline(DEADLINE_S, "expect timed out"):
        assert _recv_message(ws, "hold") == (0x1, b"hello")
    pong = far.recv(64)
    assert pong[0] == 0x8A and pong[1] == 0x80 | 4  # FIN + pong, masked, 4 bytes: the ping's payload


def test_a_ping_longer_than_a_control_frame_may_be_is_a_protocol_error(adopted) -> None:
    ws, far = adopted
    far.sendall(frame(0x9, b"x" * 126))
    with pytest.raises(WsFailure, match="^protocol error during hold$"), Deadline(DEADLINE_S, "expect timed out"):
        _recv_message(ws, "hold")


def test_a_connections_deadlines_share_one_timer_and_each_still_fires() -> None:
    """Waits at the session's timeout share a timer: each one that runs out fails, one ended in time never fires."""
    session = WebSocketSession("ws://127.0.0.1:9/", timeout_s=DEADLINE_S / 3)
    for _ in range(2):
        with (
            pytest.raises(WsFailure, match="^expect timed out$"),
            session.deadline(session.timeout_s, "expect timed out"),
        ):
            gevent.sleep(DEADLINE_S)
    with session.deadline(session.timeout_s, "expect timed out"):
        pass
    gevent.sleep(DEADLINE_S / 2)  # past the timeout: the stopped timer raises nothing


def test_a_wait_inside_a_wait_or_at_another_timeout_gets_a_timer_of_its_own() -> None:
    """A shorter inner deadline fails alone; an inner one at the same timeout ends without stopping the outer one."""
    session = WebSocketSession("ws://127.0.0.1:9/", timeout_s=DEADLINE_S)
    started = time.perf_counter()
    with pytest.raises(WsFailure, match="^outer$"), session.deadline(session.timeout_s, "outer"):
        with pytest.raises(WsFailure, match="^inner$"), session.deadline(session.timeout_s / 3, "inner"):
            gevent.sleep(DEADLINE_S * 2)
        with session.deadline(session.timeout_s, "nested"):  # the outer one's timer runs: not this one's
            gevent.sleep(DEADLINE_S / 10)
        gevent.sleep(DEADLINE_S * 2)
    assert time.perf_counter() - started >= DEADLINE_S
