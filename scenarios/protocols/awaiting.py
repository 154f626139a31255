"""An expectation with its own timeout reason, for the protocols' awaited answers (acks, CONNECT, `next`)."""

from __future__ import annotations

from collections.abc import Callable

from scenarios.conversation import Expectation, MatchResult, Message


class Awaiting(Expectation):
    """An Expectation whose timeout says what was awaited (`ack timed out`), never a payload.

    `reason` is the timeout reason, or a function of the expectation (so it can say
    whether anything close to the awaited message came).
    """

    __slots__ = ("reason", "near_misses")

    def __init__(
        self,
        predicate: Callable[[Message], MatchResult],
        reason: str | Callable[[Awaiting], str],
        after: tuple[str, ...] = (),
    ) -> None:
        super().__init__(predicate, after)
        self.reason = reason  # the timeout reason, or how to say it
        self.near_misses = 0  # messages of the awaited kind whose content did not match

    def timeout_reason(self) -> str:
        """Why the step timed out, in stable words."""
        return self.reason if isinstance(self.reason, str) else self.reason(self)
