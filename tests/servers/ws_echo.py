"""The echo conversation's exchange on one session, for tests of the session and handshake layers."""

from __future__ import annotations

from scenarios.conversation import Variables
from scenarios.exchange import StepFailed, Talk
from scenarios.protocols import ConnectionFraming
from scenarios.ws_session import WebSocketSession, WsFailure


def echo(session: WebSocketSession, text: str) -> int:
    """Send `text` and wait (within the session's timeout) for the same text back: its length.

    Raises WsFailure with the failure message a flapping user's `echo` row would show.
    """
    failures: list[WsFailure] = []

    def report(name: str, started: float, length: int, failure: WsFailure | None) -> None:
        if failure is not None:
            failures.append(failure)

    talk = Talk(session, ConnectionFraming(), Variables(), report, session.timeout_s)
    talk.part = "hold"
    try:
        talk.send(text)
        return len(talk.expect_text(text, name="echo"))
    except StepFailed:
        raise failures[-1] from None
