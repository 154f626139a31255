"""The recovery probe: after the flapping, how soon does a stable client get normal service?

It opens a connection and runs the run's conversation (its open steps and its hold
steps once: the first good round trip), retrying until that succeeds or its deadline.
`recovery_ms` runs from the end of flapping to that first good round trip. Pure: the
clock and the sleep are injected; `scenarios.lifecycle.ConversationProbe` is its I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scenarios.failure import WsFailure

RETRY_S = 0.02  # pause between failed attempts


@dataclass(frozen=True)
class RecoveryResult:
    """What the probe found."""

    recovery_ms: float | None  # end of flapping to the first good round trip; None if there was none
    attempts: int  # connections tried
    exchanges: int  # good exchanges (hold steps) on the final connection
    failure: str | None  # the last failure, when there was no good round trip (or service broke again)


class ProbeConnection(Protocol):
    """One connection of the probe: each call raises WsFailure with a short stable message when it fails."""

    def open(self) -> None:
        """Connect and run the open steps."""

    def exchange(self) -> None:
        """Run the hold steps once: one round trip."""

    def close(self) -> None:
        """The close steps and a clean close."""

    def abort(self) -> None:
        """Drop the connection now; never raises."""


def probe_recovery(
    connection: Callable[[float], ProbeConnection],
    flapping_ended_at: float,
    deadline_s: float,
    exchanges: int = 5,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> RecoveryResult:
    """Retry open + one exchange until the first success, then run the rest of `exchanges` and close.

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
            probe.exchange()
            recovered_at = clock()
        except WsFailure as error:
            failure = error.message
            probe.abort()
            sleep(RETRY_S)
            continue
        done, after = 1, None
        try:
            for _ in range(1, exchanges):
                probe.exchange()
                done += 1
            probe.close()
        except WsFailure as error:
            after = f"service broke again after recovering: {error.message}"
            probe.abort()
        return RecoveryResult((recovered_at - flapping_ended_at) * 1000.0, attempts, done, after)
    return RecoveryResult(None, attempts, 0, failure)
