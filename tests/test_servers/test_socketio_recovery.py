"""The socket.io streaming server, through raw Engine.IO 4 frames: recovery on gives a pid and replays; off, neither."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.servers.socketio_recovery import server_ready
from tests.support.unavailable import unavailable
from tests.test_servers.helpers import connect


@pytest.fixture(autouse=True)
def _node_and_socket_io() -> Iterator[None]:
    why_not = server_ready()
    if why_not is not None:
        unavailable(why_not)
    yield


class _Session:
    """One Engine.IO connection with the main namespace connected; events that came before its CONNECT answer kept."""

    def __init__(self, port: int, payload: dict[str, object]) -> None:
        self.ws = connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
        assert self.ws.recv().startswith("0{")
        self.ws.send("40" + json.dumps(payload))
        # A room the server restores on recovery may get a tick out before the CONNECT answer does.
        self.early: list[str] = []
        while (frame := self.ws.recv()).startswith("42"):
            self.early.append(frame)
        assert frame.startswith("40{"), frame
        self.answer: dict[str, object] = json.loads(frame[2:])

    def tick(self) -> list[object]:
        """The next tick's arguments, the early ones first."""
        while True:
            frame = self.early.pop(0) if self.early else self.ws.recv()
            if frame.startswith("42"):
                event = json.loads(frame[2:])
                assert event[0] == "tick"
                return event[1:]


def test_with_recovery_a_reconnect_gets_its_session_and_what_it_missed(start_app_server) -> None:
    """The CONNECT answer carries a pid; after an abrupt drop, a CONNECT with pid and offset recovers the ticks."""
    server = start_app_server("socketio_recovery", "--recovery", "--interval-ms", "10")
    session = _Session(server.port, {"user": "1"})
    pid = session.answer["pid"]
    first = session.tick()
    assert isinstance(first[0], dict) and isinstance(first[-1], str)  # {n}, then the offset
    session.ws.sock.close()  # abrupt: no DISCONNECT, no close frame
    session = _Session(server.port, {"user": "1", "pid": pid, "offset": first[-1]})
    assert session.answer["pid"] == pid
    assert session.tick()[0] == {"n": first[0]["n"] + 1}  # the next one, replayed
    session.ws.close()


def test_without_recovery_there_is_no_pid_and_ticks_go_on_while_away(start_app_server) -> None:
    """No pid in the answer; a reconnect joins the room afresh and gets only new ticks."""
    server = start_app_server("socketio_recovery", "--interval-ms", "10")
    session = _Session(server.port, {"user": "2"})
    assert "pid" not in session.answer
    first = session.tick()
    assert first == [first[0]]  # no offset
    session.ws.sock.close()
    session = _Session(server.port, {"user": "2"})
    later = session.tick()[0]
    assert isinstance(later, dict) and isinstance(first[0], dict)
    assert later["n"] > first[0]["n"]
    session.ws.close()
