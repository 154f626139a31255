"""The Socket.IO mode's pure decisions: open packet, CONNECT and auth, events, acks, DISCONNECT, bad frames."""

from __future__ import annotations

import json

import pytest

from refserver.socketio_mode import SocketIOSession, handshake_problem

TOKEN = "tok-session-1f0a"


def _session(token: str | None = None, handshake_authorized: bool = False) -> SocketIOSession:
    return SocketIOSession(expected_token=token, handshake_authorized=handshake_authorized, ping_interval_ms=100)


def test_the_open_packet_announces_the_sid_no_upgrades_and_the_heartbeat() -> None:
    """`0{...}` with the session id, no upgrades, pingInterval, pingTimeout and maxPayload."""
    session = _session()
    packet = session.open_packet()
    assert packet[0] == "0"
    assert json.loads(packet[1:]) == {
        "sid": session.sid,
        "upgrades": [],
        "pingInterval": 100,
        "pingTimeout": 20000,
        "maxPayload": 1000000,
    }


def test_connect_answers_with_a_sid_and_welcome_once_per_namespace() -> None:
    """The first CONNECT opens an agent and sends CONNECT and welcome; a repeated one only repeats the sid."""
    session = _session()
    first = session.receive("40/chat,")
    assert first.open_agent == "/chat"
    sid = session.namespaces["/chat"]
    assert first.send == (f'40/chat,{{"sid":"{sid}"}}', f'42/chat,["welcome",{{"sid":"{sid}"}}]')
    again = session.receive("40/chat,")
    assert again.open_agent is None and again.send == (f'40/chat,{{"sid":"{sid}"}}',)


@pytest.mark.parametrize(
    ("packet", "handshake_authorized", "accepted"),
    [
        ("40", False, False),
        ('40{"token":"wrong"}', False, False),
        ('40{"token":1}', False, False),
        (f'40{{"token":"{TOKEN}"}}', False, True),
        ("40", True, True),
    ],
)
def test_with_a_token_the_connect_needs_it_in_its_auth_or_the_handshake(
    packet: str, handshake_authorized: bool, accepted: bool
) -> None:
    """A wrong or missing auth token gets CONNECT_ERROR "Not authorized" unless the handshake carried it."""
    reply = _session(TOKEN, handshake_authorized).receive(packet)
    if accepted:
        assert reply.open_agent == "/"
    else:
        assert reply.send == ('44{"message":"Not authorized"}',) and reply.open_agent is None


def test_events_are_acked_echoed_or_refused_by_name() -> None:
    """chat is acked ok; message is echoed and acked; other events with an ack id get ok false; no id, no ack."""
    session = _session()
    session.receive("40")
    chat = session.receive('425["chat",{"text":"hi"}]')
    assert chat.send == ('435[{"ok":true}]',) and chat.agent_message == "/"
    assert session.receive('42["chat"]').send == ()
    assert session.receive('426["message",1,2]').send == ('42["message",1,2]', '436[{"ok":true}]')
    other = session.receive('427["other"]')
    assert other.send == ('437[{"ok":false,"error":"unknown event"}]',) and other.agent_message is None


def test_packets_for_namespaces_not_connected_are_ignored() -> None:
    """Events and DISCONNECTs of a namespace the client never connected change nothing."""
    session = _session()
    assert session.receive('42/x,1["chat"]').send == ()
    assert session.receive("41/x,").free_agent is None


def test_disconnect_frees_the_namespaces_agent() -> None:
    """DISCONNECT ends the namespace's session: its agent is freed and its events are ignored."""
    session = _session()
    session.receive("40")
    assert session.receive("41").free_agent == "/"
    assert session.receive('421["chat"]').send == ()


@pytest.mark.parametrize("frame", ["4x", '42{"a":1}', "9", ""])
def test_malformed_frames_close_the_connection(frame: str) -> None:
    """A frame that is no Engine.IO or Socket.IO packet closes the connection (not as a goodbye)."""
    reply = _session().receive(frame)
    assert reply.close and not reply.goodbye


def test_pongs_pings_close_and_binary() -> None:
    """`3` is a pong, `2` is answered `3`, `1` is the client's goodbye, binary frames are skipped."""
    session = _session()
    assert session.receive("3").pong
    assert session.receive("2probe").send == ("3probe",)
    close = session.receive("1")
    assert close.close and close.goodbye
    assert session.receive(b"\x01\x02").send == ()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/socket.io/?EIO=4&transport=websocket", None),
        ("/socket.io?EIO=4&transport=websocket&token=t", None),
        ("/ws", 404),
        ("/socket.io/", 400),
        ("/socket.io/?EIO=3&transport=websocket", 400),
        ("/socket.io/?EIO=4&transport=polling", 400),
    ],
)
def test_only_engine_io_4_websocket_handshakes_at_socket_io_are_served(path: str, problem: int | None) -> None:
    """The handshake check answers 404 off /socket.io/ and 400 for other versions or transports."""
    result = handshake_problem(path)
    assert (result[0] if result else None) == problem
