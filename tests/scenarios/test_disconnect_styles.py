"""Each disconnect style reaches a real server as intended (a hand-written server that tells them apart)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator

import pytest

from scenarios.ws_session import WebSocketSession, WsFailure
from tests.servers.raw_ws_server import CLOSE_FRAME, FIN, RESET, VANISHED_BEFORE_101, RawWsServer
from tests.servers.ws_echo import echo

MS = 0.001 * float(os.environ.get("TEST_TIME_SCALE", "1"))  # one timing unit for these tests
TOKEN = "tok-disconnect-SECRET"


@pytest.fixture
def server() -> Iterator[RawWsServer]:
    """A raw echo server on 127.0.0.1:0 that records how each connection ended."""
    with RawWsServer() as raw:
        yield raw


def _connected(server: RawWsServer, **kwargs: str) -> WebSocketSession:
    session = WebSocketSession(server.url, timeout_s=2.0, **kwargs)
    session.connect()
    assert echo(session, "hello") == 5
    return session


def test_clean_sends_a_close_frame(server: RawWsServer) -> None:
    """`clean` ends with a close frame, answered by the server's."""
    session = _connected(server)
    session.close_clean()
    (seen,) = server.wait_for_endings(1)
    assert seen.ending == CLOSE_FRAME
    assert seen.messages == ["hello"]
    assert not session.is_open


def test_abrupt_sends_a_fin_without_a_close_frame(server: RawWsServer) -> None:
    """`abrupt` shuts down the sending side: the server reads EOF and no close frame."""
    session = _connected(server)
    session.close_abrupt()
    (seen,) = server.wait_for_endings(1)
    assert seen.ending == FIN
    assert not session.is_open


def test_reset_sends_a_rst(server: RawWsServer) -> None:
    """`reset` closes with SO_LINGER 0: the server's read fails with a connection reset."""
    session = _connected(server)
    session.close_reset()
    (seen,) = server.wait_for_endings(1)
    assert seen.ending == RESET
    assert not session.is_open


def test_half_open_is_silent_until_dropped_with_a_reset(server: RawWsServer) -> None:
    """A connection left half-open sends nothing (no close frame, no FIN) until it is dropped, by a RST."""
    session = _connected(server)
    left_at = time.time()
    # 0 ms: the hold ends, the user goes silent; 200 ms: the server still sees an open connection.
    time.sleep(200 * MS)
    assert server.snapshot()[0].ending is None
    # 200 ms: the pause ends, the user drops the socket right before its next connect.
    session.abort(reset=True)
    (seen,) = server.wait_for_endings(1)
    assert seen.ending == RESET
    assert seen.ended_at is not None and seen.ended_at - left_at >= 200 * MS


def test_handshake_abort_sends_the_upgrade_request_and_vanishes_before_the_101(server: RawWsServer) -> None:
    """`handshake-abort` sends a complete upgrade request and is gone before the server answers."""
    session = WebSocketSession(server.url, timeout_s=2.0, auth_token=TOKEN)
    session.abort_handshake()
    (seen,) = server.wait_for_endings(1)
    assert seen.ending == VANISHED_BEFORE_101
    assert not seen.answered
    assert seen.request_line == "GET /ws HTTP/1.1"
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["upgrade"] == "websocket"
    assert seen.headers["connection"] == "Upgrade"
    assert seen.headers["sec-websocket-version"] == "13"
    assert len(base64.b64decode(seen.headers["sec-websocket-key"])) == 16
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"


def test_handshake_abort_sends_the_same_request_as_a_real_connect(server: RawWsServer) -> None:
    """The aborted request carries the same headers as websocket-client's own handshake, token in the query too."""
    session = WebSocketSession(server.url, timeout_s=2.0, auth_token=TOKEN, auth_in="query")
    session.connect()
    session.close_clean()
    session.abort_handshake()
    real, aborted = server.wait_for_endings(2)
    assert aborted.ending == VANISHED_BEFORE_101
    assert aborted.request_line == real.request_line
    assert aborted.query == {"token": [TOKEN]}
    assert set(aborted.headers) == set(real.headers)
    assert aborted.headers["sec-websocket-key"] != real.headers["sec-websocket-key"]


def test_handshake_abort_to_a_closed_port_fails_with_a_stable_message() -> None:
    """A refused TCP connect is a `connection refused` failure, nothing left open."""
    with RawWsServer() as gone:
        url = gone.url
    with pytest.raises(WsFailure) as raised:
        WebSocketSession(url, timeout_s=1.0).abort_handshake()
    assert raised.value.message == "connection refused"


@pytest.mark.parametrize("close", ["close_clean", "close_abrupt", "close_reset"])
def test_closing_twice_is_a_failure_not_a_crash(server: RawWsServer, close: str) -> None:
    """Every way to close needs an open connection and says so."""
    session = _connected(server)
    getattr(session, close)()
    with pytest.raises(WsFailure, match="without an open connection"):
        getattr(session, close)()
