"""The flap schedule: how long each user holds a connection and pauses, cycle by cycle.

Pure code (no sockets, no gevent, no clock): it yields durations, disconnect styles and
deadlines, the caller sleeps. Randomness is seeded per user so a seeded run is
reproducible. In storm mode the connects sit on a wall-clock grid shared by all users
(`StormGrid`); the caller reads the clock and passes it in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from scenarios.disconnect import CLEAN, DisconnectMix

UNIFORM = "uniform"
NORMAL = "normal"
EXPONENTIAL = "exponential"
JITTER_DISTRIBUTIONS = (UNIFORM, NORMAL, EXPONENTIAL)
EXPONENTIAL_CAP = 10.0  # the exponential part of a duration is capped at this many times its mean


@dataclass(frozen=True)
class FlapTiming:
    """The timing of one user's flapping, as configured."""

    connected_ms: float = 100.0  # planned hold time per cycle
    disconnected_ms: float = 50.0  # planned pause; a user's connects are hold + pause apart (see reconnect_deadline)
    jitter: float = 0.0  # spread of each duration as a fraction of it, in [0, 1); see `jittered_s`
    cycles: int = 20  # cycles per user; 0 means until the run ends
    seed: int | None = None  # seed for a reproducible schedule; None draws from the OS
    jitter_dist: str = UNIFORM  # how the jitter is distributed: uniform, normal or exponential
    storm: bool = False  # all users connect on a shared wall-clock grid (no jitter then)

    def __post_init__(self) -> None:
        if self.connected_ms < 0 or self.disconnected_ms < 0:
            raise ValueError("durations must be >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.cycles < 0:
            raise ValueError("cycles must be >= 0")
        if self.jitter_dist not in JITTER_DISTRIBUTIONS:
            raise ValueError(f"jitter distribution must be one of {', '.join(JITTER_DISTRIBUTIONS)}")
        if self.storm and self.connected_ms + self.disconnected_ms <= 0:
            raise ValueError("storm mode needs a hold or a pause longer than 0 ms")


@dataclass(frozen=True, slots=True)  # slots: every user holds its current cycle
class FlapCycle:
    """One planned cycle: connect, hold for `hold_s`, disconnect, pause for `pause_s`."""

    index: int  # 0-based cycle number within the user
    hold_s: float  # planned time between a completed connect and the disconnect
    pause_s: float  # planned pause; handshake and close times come out of it (see reconnect_deadline)
    disconnect: str = field(default=CLEAN)  # how this cycle ends its connection (a style of scenarios.disconnect)


# Unseeded users share one random source: a `random.Random` holds 2.5 KB of state, a
# quarter of what a user costs, and unseeded draws need no source of their own.
_UNSEEDED = random.Random()


def user_rng(seed: int | None, user_index: int) -> random.Random:
    """A random source for one user: reproducible per (seed, user) when seeded, else the shared one."""
    if seed is None:
        return _UNSEEDED
    # A string seed is hashed with SHA-512 by `random`, stable across runs and platforms.
    return random.Random(f"flap:{seed}:{user_index}")


def jittered_s(duration_ms: float, jitter: float, distribution: str, rng: random.Random) -> float:
    """One duration drawn around the planned `duration_ms` (d), in seconds.

    With jitter j in [0, 1):

    - uniform: d x (1 + U(-j, j)); in [d(1-j), d(1+j)], mean d.
    - normal: d x (1 + N(0, sigma = j/2)), clamped to [d(1-j), d(1+j)] (two sigmas: about
      4.6 % of the draws land on a bound); mean d, most durations near it.
    - exponential: d(1-j) plus an exponential part of mean j x d, the part capped at 10 times
      its mean; in [d(1-j), d(1+9j)], mean d (less 0.005 %): bursty, mostly short, a few long.

    Jitter 0 gives d exactly whatever the distribution, and no duration is ever negative.
    """
    if jitter == 0 or duration_ms == 0:
        return duration_ms / 1000.0
    if distribution == UNIFORM:
        factor = 1.0 + rng.uniform(-jitter, jitter)
    elif distribution == NORMAL:
        factor = min(max(rng.gauss(1.0, jitter / 2), 1.0 - jitter), 1.0 + jitter)
    elif distribution == EXPONENTIAL:
        factor = 1.0 - jitter + min(rng.expovariate(1.0 / jitter), EXPONENTIAL_CAP * jitter)
    else:
        raise ValueError(f"unknown jitter distribution {distribution!r}")
    return duration_ms * factor / 1000.0


class FlapSchedule:
    """The cycles of one user: jittered durations and disconnect styles from its own random source."""

    def __init__(self, timing: FlapTiming, rng: random.Random, disconnect: DisconnectMix | None = None) -> None:
        self.timing = timing  # what was configured
        self.disconnect = disconnect or DisconnectMix()  # the styles each cycle's disconnect is drawn from
        self._rng = rng  # this user's random source

    def _jittered(self, duration_ms: float) -> float:
        if self.timing.storm:  # the grid fixes every connect and disconnect: no jitter
            return duration_ms / 1000.0
        return jittered_s(duration_ms, self.timing.jitter, self.timing.jitter_dist, self._rng)

    def __iter__(self) -> Iterator[FlapCycle]:
        return _Cycles(self)


class _Cycles:
    """The iterator of `FlapSchedule`: its cycles in order, with the same draws as a generator would make.

    A small slotted object instead of a generator, whose suspended frame costs memory for
    every user for the whole run.
    """

    __slots__ = ("_schedule", "_index", "_fixed")

    def __init__(self, schedule: FlapSchedule) -> None:
        self._schedule = schedule
        self._index = 0  # the next cycle's number
        self._fixed = schedule.timing.storm or schedule.timing.jitter == 0  # every cycle has the planned durations

    def __iter__(self) -> _Cycles:
        return self

    def __next__(self) -> FlapCycle:
        schedule, index = self._schedule, self._index
        timing = schedule.timing
        if timing.cycles != 0 and index >= timing.cycles:
            raise StopIteration
        if self._fixed:
            hold_s, pause_s = timing.connected_ms / 1000.0, timing.disconnected_ms / 1000.0
        else:
            hold_s = schedule._jittered(timing.connected_ms)
            pause_s = schedule._jittered(timing.disconnected_ms)
        style = schedule.disconnect.draw(schedule._rng)
        self._index = index + 1
        return FlapCycle(index=index, hold_s=hold_s, pause_s=pause_s, disconnect=style)


@dataclass(frozen=True)
class StormGrid:
    """The wall-clock grid of storm mode: every user connects on a boundary, all at once.

    Boundaries are the multiples of `period_s` (hold + pause) since the Unix epoch, so every
    user of every Locust process on the machine agrees on them without talking. A user waits
    for the next boundary before its first connect and again after each disconnect; its hold
    counts from the boundary (`disconnect_deadline(boundary, cycle)`), not from the end of its
    handshake, so all users drop at the same moment too. A cycle that overruns its period
    (a slow handshake or close) reconnects at the following boundary.
    """

    period_s: float  # hold + pause, seconds

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError("the storm period must be > 0")

    def next_boundary(self, now_s: float) -> float:
        """The first boundary at or after `now_s` (seconds since the epoch)."""
        return math.ceil(now_s / self.period_s) * self.period_s


_GOLDEN_FRACTION = (5**0.5 - 1) / 2  # 0.618...: multiples of it, modulo 1, spread evenly for any count
MAX_START_OFFSET_S = 1.0  # users' first connects spread over one period, at most over this


def start_offset_s(timing: FlapTiming, user_index: int) -> float:
    """How long after it starts a user makes its first connect: its phase within one period.

    Locust starts a batch of users at the same instant (up to `--spawn-rate` at once), and
    connects one period apart would keep them in lockstep, every user connecting and
    dropping together: a storm, which `--flap-storm` asks for on purpose. So user k starts
    at the fractional part of k x 0.618... of the period (hold + pause), or of one second
    when the period is longer (a minute-long hold should not keep users from connecting for
    a minute; Locust's batches are a second apart): the first users land far apart and any
    number of them covers the span evenly, the same in every run (no random draw, so a
    seeded schedule's cycles are unchanged). 0 in storm mode.
    """
    span_s = min((timing.connected_ms + timing.disconnected_ms) / 1000.0, MAX_START_OFFSET_S)
    if timing.storm or span_s <= 0:
        return 0.0
    return (user_index * _GOLDEN_FRACTION) % 1.0 * span_s


def storm_grid(timing: FlapTiming) -> StormGrid | None:
    """The grid of a storm run (period = planned hold + pause), or None without storm mode."""
    if not timing.storm:
        return None
    return StormGrid((timing.connected_ms + timing.disconnected_ms) / 1000.0)


def disconnect_deadline(connected_at: float, cycle: FlapCycle) -> float:
    """When to disconnect: the hold counts from the moment the handshake completed.

    (In storm mode the caller passes the grid boundary instead, see `StormGrid`.)
    """
    return connected_at + cycle.hold_s


def reconnect_deadline(cycle_start: float, cycle: FlapCycle, now: float) -> float:
    """When to connect again: the schedule aims at absolute deadlines, one cycle period apart.

    A cycle planned to start at `cycle_start` is followed by the next connect at
    `cycle_start + hold + pause`: the time the handshake and the close take, and a late
    wake-up, come out of the pause instead of pushing every later cycle, so each user keeps
    its planned rate of connects (failed ones included, as a client with a fixed reconnect
    interval would). A cycle that overran its period (a slow handshake or close, an
    overloaded generator) is followed by a connect right away, `now`, never earlier: a late
    user slips, it never bursts to catch up.
    """
    return max(cycle_start + cycle.hold_s + cycle.pause_s, now)
