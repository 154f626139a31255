"""``--protocol app``: a small agent-chat protocol over JSON text frames, as pure state (no I/O).

The server greets every connection with ``{"type": "connection_established"}``. Then:

- ``{"type": "ping"}`` is answered with ``{"type": "pong"}``, at any time;
- ``{"type": "auth", "token": T}`` opens the session's agent and is answered with
  ``{"type": "auth_ok"}``; when a token is required and T differs, the answer is
  ``{"type": "auth_failed"}`` and the connection is closed with 4401;
- ``{"type": "message", "content": X}`` is answered with ``{"type": "agent_response", "content": X}``
  once authenticated, else with ``{"type": "error", "error": "not authenticated"}``;
- anything else gets ``{"type": "error", "error": ...}`` and the connection stays open.

`AppSession` decides; the server only moves frames and owns the agent.
"""

from __future__ import annotations

import json
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
        if kind == "message":
            if not self.authenticated:
                return _error("not authenticated")
            response = {"type": "agent_response", "content": decoded.get("content")}
            return Reply(send=(_encode(response),), counts_as_agent_message=True)
        return _error("unknown message type")
