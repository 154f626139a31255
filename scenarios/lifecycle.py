"""One connection's life, the same for every client of a run: connect, open, converse, close politely.

The flapping users, the steady users and the recovery probe all go through `Connection`,
made by the one client factory (`WsClient`), so they cannot drift apart. What a
connection says is a `ConversationScript`: by default the run's conversation file (or
the built-in echo); in Python, a subclass named by the user class (`FlappingUser.script`).
"""

from __future__ import annotations

import time

from scenarios.client import WsClient
from scenarios.continuity import UserCarry
from scenarios.exchange import Report, Talk, converse
from scenarios.ws_session import WebSocketSession, WsFailure


class ConversationScript:
    """What a connection says after each (re)connect; subclass it to write the conversation in Python.

    A fresh script is made for each connection, so what the hooks keep on `self` belongs to
    that connection. Each hook gets the connection's `Talk` (`send`, `expect`,
    `expect_text`, `expect_regex`, `do`); a failed step (StepFailed) or any exception ends
    the session as failed. The defaults run the conversation file's steps.
    """

    def on_open(self, talk: Talk) -> None:
        """After the handshake (and the protocol's own opening): the conversation's `open` steps."""
        talk.run(talk.conversation.open)

    def on_hold(self, talk: Talk) -> None:
        """At the start of each hold (a steady user: every interval): the conversation's `hold` steps."""
        talk.run(talk.conversation.hold)

    def on_close(self, talk: Talk) -> None:
        """Before a clean disconnect: the conversation's `close` steps (other disconnect styles skip it)."""
        talk.run(talk.conversation.close)


class Connection:
    """One connection of any client: its session, its conversation, and the rows they report."""

    __slots__ = ("client", "script", "session", "talk", "_report", "_user", "_cycle", "_carry")

    def __init__(
        self,
        client: WsClient,
        script: ConversationScript,
        session: WebSocketSession,
        report: Report,
        user: int = 0,
        cycle: int = 0,
        carry: UserCarry | None = None,
    ) -> None:
        self.client = client  # the run's client factory: framing, variables, the protocol's opening
        self.script = script  # what this connection says
        self.session = session  # the WebSocket, unconnected until `connect`
        self.talk: Talk | None = None  # the conversation, once connected
        self._report = report  # fires one row: (name, started, length, failure)
        self._user = user  # ${user}
        self._cycle = cycle  # ${cycle}
        self._carry = carry  # the user's stream and resume state across its connections, if any

    def connect(self, started: float | None = None) -> WsFailure | None:
        """The handshake, reported as the `connect` row (timed from `started`); the failure, or None."""
        started = time.perf_counter() if started is None else started
        try:
            self.session.connect()
        except WsFailure as failure:
            self._report("connect", started, 0, failure)
            return failure
        self._report("connect", started, 0, None)
        self.talk = self.client.talk(self.session, self._report, self._user, self._cycle, self._carry)
        return None

    def open(self) -> WsFailure | None:
        """The protocol's opening and the script's `on_open`: the session is established when this returns None."""
        assert self.talk is not None, "open() before connect()"
        return converse(self.talk, "open", self.script.on_open, self.client.opening)

    def hold(self) -> WsFailure | None:
        """The script's `on_hold` once."""
        assert self.talk is not None, "hold() before connect()"
        return converse(self.talk, "hold", self.script.on_hold)

    def close_steps(self) -> WsFailure | None:
        """The script's `on_close` (before a clean disconnect)."""
        assert self.talk is not None, "close_steps() before connect()"
        return converse(self.talk, "close", self.script.on_close)

    def goodbye(self) -> None:
        """The protocol's goodbye and the close frame, in one write; raises WsFailure."""
        assert self.talk is not None, "goodbye() before connect()"
        self.talk.close_clean()

    def close_politely(self) -> WsFailure | None:
        """The close steps, then the goodbye: the failure, or None (the connection is dropped on failure)."""
        failure = self.close_steps()
        if failure is not None:
            return failure
        try:
            self.goodbye()
        except WsFailure as error:
            self.session.abort()
            return error
        return None

    def abort(self) -> None:
        """Drop the connection now; never raises."""
        self.session.abort()


def _quiet(name: str, started: float, length: int, failure: WsFailure | None) -> None:
    """The probe's steps report no rows of their own: its one row is `recovery`."""


def _raised(failure: WsFailure | None) -> None:
    if failure is not None:
        raise WsFailure(failure.message)


class ConversationProbe:
    """A probe connection that speaks the run's conversation, made by the run's client factory."""

    def __init__(self, client: WsClient, script: ConversationScript, host: str, timeout_s: float, user: int) -> None:
        """`user`: the probe's ${user}, a number no flapping user has."""
        session = client.session(host, timeout_s=min(client.settings.timeout_s, timeout_s))
        self._connection = Connection(client, script, session, _quiet, user=user)  # the one lifecycle

    def open(self) -> None:
        """Connect and run the protocol's opening and the open steps."""
        _raised(self._connection.connect())
        _raised(self._connection.open())

    def exchange(self) -> None:
        """The hold steps once: one round trip."""
        _raised(self._connection.hold())

    def close(self) -> None:
        """The close steps, the protocol's goodbye, a clean close."""
        _raised(self._connection.close_politely())

    def abort(self) -> None:
        """Drop the connection."""
        self._connection.abort()
