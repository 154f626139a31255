"""The recovery probe: after the flapping, how soon does a stable client get normal service?

It opens a connection and runs the run's conversation (its open steps and its hold
steps once: the first good round trip), retrying until that succeeds or its deadline.
`recovery_ms` runs from the end of flapping to that first good round trip. The retry
loop is pure (injectable clock and sleep); `ConversationProbe` is its thin I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from scenarios.client import WsClient
from scenarios.conversation import Step
from scenarios.exchange import Talk, converse
from scenarios.ws_session import WebSocketSession, WsFailure

RETRY_S = 0.02  # pause between failed attempts
PROBE_USER = -1  # the probe's ${user}: no flapping user's number, so a server (or a test) can tell it apart


@dataclass(frozen=True)
class RecoveryResult:
    """What the probe found."""

    recovery_ms: float | None  # end of flapping to the first good round trip; None if there was none
    attempts: int  # connections tried
    echoes: int  # good rounds (hold steps) on the final connection
    failure: str | None  # the last failure, when there was no good round trip (or service broke again)


class ProbeConnection(Protocol):
    """One connection of the probe: each call raises WsFailure with a short stable message when it fails."""

    def open(self) -> None:
        """Connect and run the open steps."""

    def round(self) -> None:
        """Run the hold steps once: one round trip."""

    def close(self) -> None:
        """The close steps and a clean close."""

    def abort(self) -> None:
        """Drop the connection now; never raises."""


def probe_recovery(
    connection: Callable[[float], ProbeConnection],
    flapping_ended_at: float,
    deadline_s: float,
    rounds: int = 5,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> RecoveryResult:
    """Retry open + one round until the first success, then run the rest of `rounds` and close.

    `connection(timeout_s)` makes an unconnected probe connection whose operations are
    bounded by `timeout_s`.
    """
    give_up_at = flapping_ended_at + deadline_s
    attempts = 0
    failure = "no attempt before the deadline"
    while clock() < give_up_at:
        attempts += 1
        probe = connection(max(0.05, give_up_at - clock()))
        try:
            probe.open()
            probe.round()
            recovered_at = clock()
        except WsFailure as error:
            failure = error.message
            probe.abort()
            sleep(RETRY_S)
            continue
        done, after = 1, None
        try:
            for _ in range(1, rounds):
                probe.round()
                done += 1
            probe.close()
        except WsFailure as error:
            after = f"service broke again after recovering: {error.message}"
            probe.abort()
        return RecoveryResult((recovered_at - flapping_ended_at) * 1000.0, attempts, done, after)
    return RecoveryResult(None, attempts, 0, failure)


def _quiet(name: str, started: float, length: int, failure: WsFailure | None) -> None:
    """The probe's steps report no rows of their own: its one row is `recovery`."""


class ConversationProbe:
    """A probe connection that speaks the run's conversation, made by the run's client factory."""

    def __init__(self, client: WsClient, script: Any, host: str, timeout_s: float) -> None:
        self._client = client  # the one client factory
        self._script = script  # whose on_open/on_hold/on_close run (a FlappingUser)
        self._session: WebSocketSession = client.session(host, timeout_s=min(client.settings.timeout_s, timeout_s))
        self._talk: Talk | None = None  # the conversation, once connected

    def _part(self, part: str, hook: Callable[[Talk], object], steps: tuple[Step, ...] = ()) -> None:
        assert self._talk is not None
        failure = converse(self._talk, part, hook, steps)
        if failure is not None:
            raise WsFailure(failure.message)

    def open(self) -> None:
        """Connect and run the protocol's opening and the open steps."""
        self._session.connect()
        self._talk = self._client.talk(self._session, _quiet, user=PROBE_USER)
        self._part("open", self._script.on_open, self._client.opening)

    def round(self) -> None:
        """The hold steps once."""
        self._part("hold", self._script.on_hold)

    def close(self) -> None:
        """The close steps, the protocol's goodbye, a clean close."""
        self._part("close", self._script.on_close)
        assert self._talk is not None
        self._talk.close_clean()

    def abort(self) -> None:
        """Drop the connection."""
        self._session.abort()
