"""The socket.io streaming server, through raw Engine.IO 4 frames: recovery on gives a pid and replays; off, neither."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import websocket

from tests.servers.socketio_recovery import server_ready
from tests.support.unavailable import unavailable
from tests.test_servers.helpers import connect


@pytest.fixture(autouse=True)
def _node_and_socket_io() -> Iterator[None]:
    why_not = server_ready()
    if why_not is not None:
        unavailable(why_not)
    yield


def _session(port: int, payload: dict[str, object]) -> tuple[websocket.WebSocket, dict[str, object]]:
    """Open the transport, connect the main namespace with `payload`; the socket and the CONNECT answer's data."""
    ws = connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    assert ws.recv().startswith("0{")
    ws.send("40" + json.dumps(payload))
    answer = ws.recv()
    assert answer.startswith("40{"), answer
    return ws, json.loads(answer[2:])


def _tick(ws: websocket.WebSocket) -> list[object]:
    while True:
        frame = ws.recv()
        if frame.startswith("42"):
            event = json.loads(frame[2:])
            assert event[0] == "tick"
            return event[1:]


def test_with_recovery_a_reconnect_gets_its_session_and_what_it_missed(start_app_server) -> None:
    """The CONNECT answer carries a pid; after an abrupt drop, a CONNECT with pid and offset recovers the ticks."""
    server = start_app_server("socketio_recovery", "--recovery", "--interval-ms", "10")
    ws, answer = _session(server.port, {"user": "1"})
    pid = answer["pid"]
    first = _tick(ws)
    assert isinstance(first[0], dict) and isinstance(first[-1], str)  # {n}, then the offset
    ws.sock.close()  # abrupt: no DISCONNECT, no close frame
    ws, answer = _session(server.port, {"user": "1", "pid": pid, "offset": first[-1]})
    assert answer["pid"] == pid
    assert _tick(ws)[0] == {"n": first[0]["n"] + 1}  # the next one, replayed
    ws.close()


def test_without_recovery_there_is_no_pid_and_ticks_go_on_while_away(start_app_server) -> None:
    """No pid in the answer; a reconnect joins the room afresh and gets only new ticks."""
    server = start_app_server("socketio_recovery", "--interval-ms", "10")
    ws, answer = _session(server.port, {"user": "2"})
    assert "pid" not in answer
    first = _tick(ws)
    assert first == [first[0]]  # no offset
    ws.sock.close()
    ws, _ = _session(server.port, {"user": "2"})
    later = _tick(ws)[0]
    assert isinstance(later, dict) and isinstance(first[0], dict)
    assert later["n"] > first[0]["n"]
    ws.close()
