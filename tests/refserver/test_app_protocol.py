"""The app protocol's decisions, frame by frame, without a socket."""

from __future__ import annotations

import json

import pytest

from refserver.app_protocol import CLOSE_UNAUTHORIZED, STREAM_KEPT, AppSession, StreamHub

TOKEN = "tok-app-5e1d7c"


def _answers(session: AppSession, message: object) -> list[object]:
    frame = message if isinstance(message, str | bytes) else json.dumps(message)
    return [json.loads(text) for text in session.receive(frame).send]


def test_greeting_is_connection_established() -> None:
    """Every connection starts with a connection_established message."""
    assert json.loads(AppSession(None).greeting()) == {"type": "connection_established"}


def test_ping_is_answered_before_and_after_auth() -> None:
    """A JSON ping gets a pong whether or not the session is authenticated."""
    session = AppSession(None)
    assert _answers(session, {"type": "ping"}) == [{"type": "pong"}]
    session.receive(json.dumps({"type": "auth", "token": "x"}))
    assert _answers(session, {"type": "ping"}) == [{"type": "pong"}]


def test_message_before_auth_is_an_error_and_opens_nothing() -> None:
    """A user message before auth gets 'not authenticated' and no agent."""
    session = AppSession(None)
    reply = session.receive(json.dumps({"type": "message", "content": "hi"}))
    assert [json.loads(text) for text in reply.send] == [{"type": "error", "error": "not authenticated"}]
    assert not reply.open_agent and not reply.counts_as_agent_message and reply.close_code is None


def test_auth_opens_the_agent_once() -> None:
    """The first accepted auth opens the agent; a repeated auth is acknowledged without a second agent."""
    session = AppSession(None)
    first = session.receive(json.dumps({"type": "auth", "token": "anything"}))
    again = session.receive(json.dumps({"type": "auth"}))
    assert [json.loads(text) for text in first.send] == [{"type": "auth_ok"}] and first.open_agent
    assert [json.loads(text) for text in again.send] == [{"type": "auth_ok"}] and not again.open_agent
    assert session.authenticated


@pytest.mark.parametrize("token", ["wrong", "", None, 42, TOKEN + "x"])
def test_wrong_token_fails_auth_and_closes_4401(token: object) -> None:
    """With a required token, any other token gets auth_failed and a 4401 close, and opens no agent."""
    session = AppSession(TOKEN)
    reply = session.receive(json.dumps({"type": "auth", "token": token}))
    assert [json.loads(text) for text in reply.send] == [{"type": "auth_failed"}]
    assert reply.close_code == CLOSE_UNAUTHORIZED and not reply.open_agent
    assert not session.authenticated
    assert TOKEN not in "".join(reply.send) + reply.close_reason


def test_right_token_passes_auth() -> None:
    """With a required token, the same token is accepted."""
    session = AppSession(TOKEN)
    reply = session.receive(json.dumps({"type": "auth", "token": TOKEN}))
    assert reply.open_agent and reply.close_code is None
    assert TOKEN not in "".join(reply.send)


@pytest.mark.parametrize("content", ["hello", {"nested": [1, 2]}, "", None])
def test_message_after_auth_gets_agent_response(content: object) -> None:
    """Once authenticated, a message's content comes back in an agent_response."""
    session = AppSession(None)
    session.receive(json.dumps({"type": "auth", "token": "t"}))
    reply = session.receive(json.dumps({"type": "message", "content": content}))
    assert [json.loads(text) for text in reply.send] == [{"type": "agent_response", "content": content}]
    assert reply.counts_as_agent_message


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "not JSON"),
        (b"\x00\x01", "binary frames are not supported"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "subscribe"}', "stream must be a short name"),
        ("{}", "unknown message type"),
    ],
)
def test_bad_frames_get_an_error_and_keep_the_connection(frame: str | bytes, error: str) -> None:
    """Frames the protocol does not know are answered with an error; the connection stays open."""
    reply = AppSession(None).receive(frame)
    assert [json.loads(text) for text in reply.send] == [{"type": "error", "error": error}]
    assert reply.close_code is None and not reply.open_agent


def test_subscribe_names_a_stream_and_where_to_resume() -> None:
    """A subscribe gives the stream and the number to resume after (an integer or digits; empty: none)."""
    session = AppSession(None)
    assert session.receive(json.dumps({"type": "subscribe", "stream": "user-1"})).subscribe == ("user-1", None)
    assert session.receive(json.dumps({"type": "subscribe", "stream": "u", "after": ""})).subscribe == ("u", None)
    assert session.receive(json.dumps({"type": "subscribe", "stream": "u", "after": "12"})).subscribe == ("u", 12)
    assert session.receive(json.dumps({"type": "subscribe", "stream": "u", "after": 7})).subscribe == ("u", 7)
    assert _answers(session, {"type": "subscribe", "stream": "u", "after": "x"}) == [
        {"type": "error", "error": "after must be a sequence number"}
    ]
    assert _answers(session, {"type": "subscribe", "stream": ""})[0]["type"] == "error"


def _ticks(frames: object) -> list[int]:
    return [json.loads(frame)["seq"] for frame in frames]  # type: ignore[attr-defined]


def test_a_stream_goes_on_while_nobody_listens_and_a_resume_replays_what_was_missed() -> None:
    """Ticks number every stream from 1; a resume after N replays N+1 onwards from what is kept."""
    hub = StreamHub()
    assert hub.subscribe("user-1", None) == ()
    ticks = [hub.tick() for _ in range(5)]
    assert ticks[0] == [("user-1", json.dumps({"type": "tick", "stream": "user-1", "seq": 1}))]
    assert _ticks(hub.subscribe("user-1", 2)) == [3, 4, 5]
    assert _ticks(hub.subscribe("user-1", 5)) == []


def test_lose_on_resume_replays_only_the_newer_half_of_what_was_missed() -> None:
    """The fault: of 5 missed messages only the last 2 come back; of 1, none."""
    hub = StreamHub(lose_on_resume=True)
    hub.subscribe("s", None)
    for _ in range(6):
        hub.tick()
    assert _ticks(hub.subscribe("s", 1)) == [5, 6]
    assert _ticks(hub.subscribe("s", 5)) == []


def test_a_stream_keeps_only_its_newest_messages() -> None:
    """A resume after a very long absence gets what is kept; the rest is lost (bounded memory)."""
    hub = StreamHub()
    hub.subscribe("s", None)
    for _ in range(STREAM_KEPT + 10):
        hub.tick()
    replay = _ticks(hub.subscribe("s", 0))
    assert replay[0] == 11
    assert len(replay) == STREAM_KEPT
