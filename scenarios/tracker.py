"""Connection tracker: counts of what the flapping users did, per user and in total.

Pure bookkeeping. A `FlapCounts` snapshot is mergeable, so counts from several
Locust workers add up on the master (the monitor and verdict read the total).
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from typing import Any

from scenarios.continuity import ContinuityCounts


@dataclass
class DurationStats:
    """Count, sum, min and max of a duration, in seconds."""

    count: int = 0  # how many durations were added
    total_s: float = 0.0  # their sum
    min_s: float | None = None  # shortest
    max_s: float | None = None  # longest

    def add(self, seconds: float) -> None:
        """Record one duration."""
        self.count += 1
        self.total_s += seconds
        if self.min_s is None or seconds < self.min_s:
            self.min_s = seconds
        if self.max_s is None or seconds > self.max_s:
            self.max_s = seconds

    @property
    def mean_s(self) -> float | None:
        """Mean duration, or None before the first one."""
        return self.total_s / self.count if self.count else None

    def merged(self, other: DurationStats) -> DurationStats:
        """The stats of both sets of durations together."""
        mins = [m for m in (self.min_s, other.min_s) if m is not None]
        maxs = [m for m in (self.max_s, other.max_s) if m is not None]
        return DurationStats(
            count=self.count + other.count,
            total_s=self.total_s + other.total_s,
            min_s=min(mins) if mins else None,
            max_s=max(maxs) if maxs else None,
        )


@dataclass
class FlapCounts:
    """What one user, one worker or the whole run did."""

    users_started: int = 0  # users that began cycling
    users_finished: int = 0  # users that completed all their cycles
    connect_attempts: int = 0  # handshakes begun
    connect_successes: int = 0  # handshakes completed (HTTP 101)
    connect_failures: int = 0  # connects that failed: the handshake, or an open step (the session refused)
    open_connections: int = 0  # connections open right now
    sessions_established: int = 0  # connects whose open steps all passed (the application session began)
    sessions_succeeded: int = 0  # established sessions whose every step and disconnect succeeded
    sessions_failed: int = 0  # established sessions that a failed step, a server close or a failed disconnect ended
    messages_received: int = 0  # application messages the server sent (answers and pushes)
    cycles_completed: int = 0  # cycles that reached the end of their pause
    hold: DurationStats = field(default_factory=DurationStats)  # actual hold times
    cycle: DurationStats = field(default_factory=DurationStats)  # actual cycle times, connect to reconnect
    continuity: ContinuityCounts = field(default_factory=ContinuityCounts)  # the users' streams (stream: defined)

    def merged(self, other: FlapCounts) -> FlapCounts:
        """The sum of two snapshots (e.g. two workers)."""
        sums = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), int)
        }
        return FlapCounts(
            **sums,
            hold=self.hold.merged(other.hold),
            cycle=self.cycle.merged(other.cycle),
            continuity=self.continuity.merged(other.continuity),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and msgpack-friendly form, for worker-to-master messages and reports."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlapCounts:
        """The inverse of `to_dict`."""
        values = dict(data)
        hold = DurationStats(**values.pop("hold", {}))
        cycle = DurationStats(**values.pop("cycle", {}))
        continuity = ContinuityCounts.from_dict(values.pop("continuity", {}))
        return cls(**values, hold=hold, cycle=cycle, continuity=continuity)


class ConnectionTracker:
    """The process's counts; the flapping users report every step here.

    Only totals are kept: the verdict, the monitor and the worker reports read nothing per
    user, and a per-user record would cost every connection memory and every step time.
    """

    def __init__(self) -> None:
        self.total = FlapCounts()  # the sum over all users of this process

    # Called several times per cycle by every user: each method updates the totals
    # directly, without loops or temporaries.

    def user_started(self) -> None:
        """A user began cycling."""
        self.total.users_started += 1

    def user_finished(self) -> None:
        """A user completed all its cycles."""
        self.total.users_finished += 1

    def connect_attempted(self) -> None:
        """A handshake began."""
        self.total.connect_attempts += 1

    def connect_succeeded(self) -> None:
        """A handshake completed; the connection is open."""
        total = self.total
        total.connect_successes += 1
        total.open_connections += 1

    def connect_failed(self) -> None:
        """A connect failed: its handshake, or one of its open steps."""
        self.total.connect_failures += 1

    def session_established(self) -> None:
        """Every open step of a new connection passed."""
        self.total.sessions_established += 1

    def session_ended(self, succeeded: bool, messages: int) -> None:
        """An established session ended: whether all went well, and how many messages it received."""
        total = self.total
        if succeeded:
            total.sessions_succeeded += 1
        else:
            total.sessions_failed += 1
        total.messages_received += messages

    def disconnected(self, hold_s: float) -> None:
        """An open connection was dropped after being held `hold_s` seconds."""
        total = self.total
        total.open_connections -= 1
        total.hold.add(hold_s)

    def cycle_completed(self, cycle_s: float) -> None:
        """A cycle ended (its pause is over) after `cycle_s` seconds."""
        total = self.total
        total.cycles_completed += 1
        total.cycle.add(cycle_s)

    def snapshot(self) -> FlapCounts:
        """A copy of the totals, safe to send or keep."""
        return FlapCounts.from_dict(self.total.to_dict())

    def reset(self) -> None:
        """Forget everything (a new test run in the same Locust process)."""
        self.total = FlapCounts()


class UserNumbers:
    """Numbers for users of one process: each takes the lowest number no running user has.

    A user keeps its number until it is stopped, then gives it back; the next round's fresh
    users take the last round's numbers again, so numbers stay below the users asked for.
    """

    __slots__ = ("_next", "_free")

    def __init__(self) -> None:
        self._next = 0  # the lowest number never taken
        self._free: list[int] = []  # numbers given back, a heap (lowest first)

    def take(self) -> int:
        """The lowest free number."""
        if self._free:
            return heapq.heappop(self._free)
        number, self._next = self._next, self._next + 1
        return number

    def give_back(self, number: int) -> None:
        """A stopped user's number is free again."""
        heapq.heappush(self._free, number)
