"""The flap schedule: how long each user holds a connection and pauses, cycle by cycle.

Pure code (no sockets, no gevent, no clock): it yields durations and deadlines,
the caller sleeps. Randomness is seeded per user so a seeded run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class FlapTiming:
    """The timing of one user's flapping, as configured."""

    connected_ms: float = 100.0  # planned hold time per cycle
    disconnected_ms: float = 50.0  # planned pause between a disconnect and the next connect
    jitter: float = 0.0  # fraction of each duration applied uniformly +/-, in [0, 1)
    cycles: int = 20  # cycles per user; 0 means until the run ends
    seed: int | None = None  # seed for a reproducible schedule; None draws from the OS

    def __post_init__(self) -> None:
        if self.connected_ms < 0 or self.disconnected_ms < 0:
            raise ValueError("durations must be >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.cycles < 0:
            raise ValueError("cycles must be >= 0")


@dataclass(frozen=True)
class FlapCycle:
    """One planned cycle: connect, hold for `hold_s`, disconnect, pause for `pause_s`."""

    index: int  # 0-based cycle number within the user
    hold_s: float  # planned time between a completed connect and the disconnect
    pause_s: float  # planned time between the disconnect and the next connect


def user_rng(seed: int | None, user_index: int) -> random.Random:
    """A random source for one user: reproducible per (seed, user) when seeded."""
    if seed is None:
        return random.Random()
    # A string seed is hashed with SHA-512 by `random`, stable across runs and platforms.
    return random.Random(f"flap:{seed}:{user_index}")


class FlapSchedule:
    """The cycles of one user, with jitter drawn from its own random source."""

    def __init__(self, timing: FlapTiming, rng: random.Random) -> None:
        self.timing = timing  # what was configured
        self._rng = rng  # this user's random source

    def _jittered(self, duration_ms: float) -> float:
        jitter = self.timing.jitter
        if jitter == 0 or duration_ms == 0:
            return duration_ms / 1000.0
        return duration_ms * (1.0 + self._rng.uniform(-jitter, jitter)) / 1000.0

    def __iter__(self) -> Iterator[FlapCycle]:
        index = 0
        while self.timing.cycles == 0 or index < self.timing.cycles:
            hold_s = self._jittered(self.timing.connected_ms)
            pause_s = self._jittered(self.timing.disconnected_ms)
            yield FlapCycle(index=index, hold_s=hold_s, pause_s=pause_s)
            index += 1


def disconnect_deadline(connected_at: float, cycle: FlapCycle) -> float:
    """When to disconnect: the hold counts from the moment the handshake completed."""
    return connected_at + cycle.hold_s


def reconnect_deadline(planned_disconnect: float, close_duration_s: float, cycle: FlapCycle) -> float:
    """When to connect again.

    The pause counts from the planned disconnect plus the time the close itself took,
    so a late wake-up before the disconnect does not push the next connect later.
    """
    return planned_disconnect + close_duration_s + cycle.pause_s
