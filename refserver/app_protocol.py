"""``--protocol app``: a small agent-chat protocol over JSON text frames, as pure state (no I/O).

The server greets every connection with ``{"type": "connection_established"}``. Then:

- ``{"type": "ping"}`` is answered with ``{"type": "pong"}``, at any time;
- ``{"type": "auth", "token": T}`` opens the session's agent and is answered with
  ``{"type": "auth_ok"}``; when a token is required and T differs, the answer is
  ``{"type": "auth_failed"}`` and the connection is closed with 4401;
- ``{"type": "message", "content": X}`` is answered with ``{"type": "agent_response", "content": X}``
  once authenticated, else with ``{"type": "error", "error": "not authenticated"}``;
- ``{"type": "subscribe", "stream": S, "after": N}`` subscribes the connection to the stream S
  (a named stream, such as a user's own: it exists from its first subscribe, goes on whether or
  not anyone is subscribed, and every subscriber gets all of it), answered with
  ``{"type": "subscribed", "stream": S, "replayed": K}``: then the K messages after N that the
  server still keeps (resume by offset; ``after`` empty or absent: none), then every new one,
  ``{"type": "tick", "stream": S, "seq": n}``, n = 1, 2, ...
- anything else gets ``{"type": "error", "error": ...}`` and the connection stays open.

`AppSession` decides and `StreamHub` keeps the streams; the server only moves frames, owns
the agent and ticks the hub on its clock. With the `lose-on-resume` fault, a resume replays
only the newer half of what was missed.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass

from refserver.auth import same_secret

PROTOCOLS = ("echo", "app")
CLOSE_UNAUTHORIZED = 4401
GREETING = json.dumps({"type": "connection_established"})


def _encode(message: dict[str, object]) -> str:
    return json.dumps(message)


@dataclass(frozen=True)
class Reply:
    """What the server does about one received message."""

    send: tuple[str, ...] = ()  # text frames to send, in order
    open_agent: bool = False  # the session was just authenticated: create its agent
    close_code: int | None = None  # close the connection with this code after sending
    close_reason: str = ""
    counts_as_agent_message: bool = False  # a user message the agent handled
    subscribe: tuple[str, int | None] | None = None  # (stream, after): subscribe this connection, replay after


def _error(text: str) -> Reply:
    return Reply(send=(_encode({"type": "error", "error": text}),))


class AppSession:
    """The protocol state of one connection: authenticated or not."""

    def __init__(self, expected_token: str | None) -> None:
        self._expected_token = expected_token  # None: any auth message is accepted
        self.authenticated = False  # an auth message was accepted; the agent exists from then on

    @staticmethod
    def greeting() -> str:
        """The first frame the server sends on every connection."""
        return GREETING

    def _token_accepted(self, token: object) -> bool:
        if self._expected_token is None:
            return True
        return isinstance(token, str) and same_secret(token, self._expected_token)

    def receive(self, message: str | bytes) -> Reply:
        """Decide the answer to one received frame."""
        if isinstance(message, bytes):
            return _error("binary frames are not supported")
        try:
            decoded = json.loads(message)
        except ValueError:
            return _error("not JSON")
        if not isinstance(decoded, dict):
            return _error("not a JSON object")
        kind = decoded.get("type")
        if kind == "ping":
            return Reply(send=(_encode({"type": "pong"}),))
        if kind == "auth":
            if not self._token_accepted(decoded.get("token")):
                return Reply(
                    send=(_encode({"type": "auth_failed"}),),
                    close_code=CLOSE_UNAUTHORIZED,
                    close_reason="unauthorized",
                )
            first = not self.authenticated
            self.authenticated = True
            return Reply(send=(_encode({"type": "auth_ok"}),), open_agent=first)
        if kind == "subscribe":
            stream, after = decoded.get("stream"), decoded.get("after")
            if not isinstance(stream, str) or not STREAM_NAME.fullmatch(stream):
                return _error("stream must be a short name")
            if after in (None, ""):
                return Reply(subscribe=(stream, None))
            if isinstance(after, str) and after.strip().isdigit():
                after = int(after)
            if isinstance(after, bool) or not isinstance(after, int) or after < 0:
                return _error("after must be a sequence number")
            return Reply(subscribe=(stream, after))
        if kind == "message":
            if not self.authenticated:
                return _error("not authenticated")
            response = {"type": "agent_response", "content": decoded.get("content")}
            return Reply(send=(_encode(response),), counts_as_agent_message=True)
        return _error("unknown message type")


STREAM_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
STREAM_KEPT = 512  # messages each stream keeps for resumes
MAX_STREAMS = 10_000  # streams the hub keeps; the oldest one goes first


class UserStreamState:
    """One stream: its last sequence number and the messages kept for resumes."""

    __slots__ = ("seq", "kept")

    def __init__(self) -> None:
        self.seq = 0  # the last sequence number sent
        self.kept: deque[tuple[int, str]] = deque(maxlen=STREAM_KEPT)  # (seq, frame) of the newest messages


class StreamHub:
    """Every user's stream: ticked on the server's clock, resumed by offset. Pure state, no I/O."""

    def __init__(self, lose_on_resume: bool = False) -> None:
        self.lose_on_resume = lose_on_resume  # the fault: a resume replays only the newer half of what was missed
        self.streams: dict[str, UserStreamState] = {}  # by name, oldest first

    def subscribe(self, name: str, after: int | None) -> tuple[str, ...]:
        """Make the stream if new; the frames after `after` to replay (none when `after` is None)."""
        state = self.streams.get(name)
        if state is None:
            if len(self.streams) >= MAX_STREAMS:
                del self.streams[next(iter(self.streams))]
            state = self.streams[name] = UserStreamState()
        if after is None:
            return ()
        missed = [frame for seq, frame in state.kept if seq > after]
        if self.lose_on_resume:
            missed = missed[len(missed) - len(missed) // 2 :]  # the bug: the older half is dropped
        return tuple(missed)

    def tick(self) -> list[tuple[str, str]]:
        """One more message on every stream, subscribed or not: (stream, frame) pairs."""
        sent = []
        for name, state in self.streams.items():
            state.seq += 1
            frame = _encode({"type": "tick", "stream": name, "seq": state.seq})
            state.kept.append((state.seq, frame))
            sent.append((name, frame))
        return sent


def subscribed(name: str, replayed: int) -> str:
    """The answer to a subscribe."""
    return _encode({"type": "subscribed", "stream": name, "replayed": replayed})
