"""The recovery probe: after the flapping, how soon does a stable client get normal service?

It opens a connection and exchanges messages, retrying until the first good round trip
or its deadline. `recovery_ms` runs from the end of flapping to that first round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scenarios.ws_session import WebSocketSession, WsFailure

RETRY_S = 0.02  # pause between failed attempts


@dataclass(frozen=True)
class RecoveryResult:
    """What the probe found."""

    recovery_ms: float | None  # end of flapping to the first good round trip; None if there was none
    attempts: int  # connections tried
    echoes: int  # good round trips on the final connection
    failure: str | None  # the last failure, when there was no good round trip (or service broke again)


def probe_recovery(
    open_session: Callable[[float], WebSocketSession],
    flapping_ended_at: float,
    deadline_s: float,
    messages: int = 5,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> RecoveryResult:
    """Retry connect + echo until the first good round trip, then exchange the rest of `messages`.

    `open_session(timeout_s)` makes an unconnected session; `clock` and `sleep` are injectable
    (the Locust glue passes gevent's sleep).
    """
    give_up_at = flapping_ended_at + deadline_s
    attempts = 0
    failure = "no attempt before the deadline"
    while clock() < give_up_at:
        attempts += 1
        session = open_session(max(0.05, give_up_at - clock()))
        try:
            session.connect()
            session.echo("recovery 0")
            recovered_at = clock()
        except WsFailure as error:
            failure = error.message
            session.abort()
            sleep(RETRY_S)
            continue
        echoes, after = 1, None
        try:
            for index in range(1, messages):
                session.echo(f"recovery {index}")
                echoes += 1
            session.close_clean()
        except WsFailure as error:
            after = f"service broke again after recovering: {error.message}"
            session.abort()
        return RecoveryResult((recovered_at - flapping_ended_at) * 1000.0, attempts, echoes, after)
    return RecoveryResult(None, attempts, 0, failure)
