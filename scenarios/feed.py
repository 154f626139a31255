"""A conversation's `feed:`: what the pack publishes to each active user, where someone else would.

Pure: the file's `feed:` parsed, which targets get which `${seq}` next, and when the next
round is due (an injected clock). The feeder's connection and its rows are
`scenarios.feeder`'s.

    feed:
      every_ms: 50           # a round every 50 ms (>= 10)
      steps:                 # once per active user of the process in each round
        - publish: flap/${target}
          payload: {seq: "${seq}"}
          qos: 1

`${target}` is the user's number (its `${user}`), `${seq}` a counter per target from 1.
Each Locust worker numbers its users from 0 and runs a feeder of its own, so with workers a step
that names `${target}` names `${worker}` too (`flap/${worker}-${target}`), or every worker's
feeder would feed every worker's user of that number (`FeedSpec.check_across_workers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scenarios.conversation import ConversationError, Step, number_without_worker
from scenarios.file_keys import reject_unknown_keys

FEED_KEYS = ("every_ms", "steps")
FEED_VARIABLES = ("target", "seq")  # what feed steps may use besides the built-ins
MIN_FEED_MS = 10  # a round more often than this is a mistake, not a feed
ROW_PREFIX = "feed-"  # the feeder's rows: feed-connect, feed-publish, ...


@dataclass(frozen=True)
class FeedSpec:
    """How often a round goes out, and the steps it runs once per active user."""

    every_ms: float  # the period of the rounds
    steps: tuple[Step, ...]  # run with ${target} and ${seq} set
    target_without_worker: tuple[int, ...] = ()  # the steps (from 1) naming ${target} but not ${worker}

    @property
    def every_s(self) -> float:
        """The period, in seconds."""
        return self.every_ms / 1000.0

    def check_across_workers(self) -> None:
        """ConversationError when the run has Locust workers and a step names `${target}` without `${worker}`.

        Each worker numbers its users from 0: such a step is the same for the same number on every
        worker, so each worker's feeder would feed the other workers' users too (or their topics collide).
        """
        if self.target_without_worker:
            raise ConversationError(
                f"feed step {self.target_without_worker[0]}: names ${{target}} without ${{worker}}, but with "
                "Locust workers each worker numbers its users from 0 (name both, as in flap/${worker}-${target})"
            )


def parse_feed(
    data: Any,
    actions: Mapping[str, frozenset[str]],
    known: Iterable[str],
    parse_step: Callable[[Any, str, int, Mapping[str, frozenset[str]], list[str]], Step],
) -> FeedSpec:
    """The `feed:` mapping; ConversationError (one line, without the file's name) when it is bad.

    `parse_step(item, part, index, actions, known)` parses one step the way the conversation's
    parts are parsed; a step without a `name` is named after its action.
    """
    if not isinstance(data, Mapping):
        raise ConversationError("feed: must be a mapping {every_ms: ..., steps: [...]}")
    reject_unknown_keys("feed", data, FEED_KEYS)
    every_ms = data.get("every_ms")
    if isinstance(every_ms, bool) or not isinstance(every_ms, (int, float)):
        raise ConversationError("feed: every_ms must be a number of milliseconds")
    if every_ms < MIN_FEED_MS:
        raise ConversationError(f"feed: every_ms must be >= {MIN_FEED_MS} (got {every_ms:g})")
    items = data.get("steps")
    if not isinstance(items, list) or not items:
        raise ConversationError("feed: steps must be a non-empty list of steps")
    names = [*known, *FEED_VARIABLES]
    steps = []
    for index, item in enumerate(items, 1):
        if isinstance(item, Mapping) and "name" not in item:
            action = next((key for key in item if key in actions), None)
            if action is not None:
                item = {**item, "name": action}
        steps.append(parse_step(item, "feed", index, actions, names))
    without_worker = tuple(index for index, item in enumerate(items, 1) if number_without_worker(item, "target"))
    return FeedSpec(float(every_ms), tuple(steps), without_worker)


class FeedTargets:
    """The process's active users (their numbers) and each one's next `${seq}`.

    A number keeps its counter when its user goes inactive and comes back, so a target never
    sees a number twice.
    """

    def __init__(self) -> None:
        self._active: dict[int, None] = {}  # the active numbers, in the order they came
        self._last_seq: dict[int, int] = {}  # the last ${seq} given to each target

    def add(self, number: int) -> None:
        """A user began flapping under `number`."""
        self._active[number] = None

    def remove(self, number: int) -> None:
        """The user under `number` stopped (finished its cycles, or was stopped)."""
        self._active.pop(number, None)

    @property
    def active(self) -> tuple[int, ...]:
        """The active numbers, in the order they came."""
        return tuple(self._active)

    def round(self) -> tuple[tuple[int, int], ...]:
        """One round: (target, seq) for every active user, seq one more than the last that went out to it.

        Nothing is counted until `sent`: a target whose steps failed gets the same seq next round.
        """
        return tuple((number, self._last_seq.get(number, 0) + 1) for number in self._active)

    def sent(self, number: int, seq: int) -> None:
        """The feed's steps for `number` with `seq` passed."""
        self._last_seq[number] = seq

    def last_sent(self, number: int) -> int:
        """The last seq that went out to `number` (0 before any)."""
        return self._last_seq.get(number, 0)


class FeedSchedule:
    """When rounds are due: every `every_s` from the start; a late round does not bunch up the next ones."""

    def __init__(self, every_s: float, clock: Callable[[], float]) -> None:
        self.every_s = every_s  # the period
        self._clock = clock  # seconds
        self.due = clock()  # the first round goes out at once

    def wait_s(self) -> float:
        """Seconds until the next round is due (0 when it is due now)."""
        return max(0.0, self.due - self._clock())

    def taken(self) -> None:
        """A round went out: the next is due one period after this one was, or one period from now if late."""
        now = self._clock()
        self.due += self.every_s
        if self.due <= now:
            self.due = now + self.every_s
