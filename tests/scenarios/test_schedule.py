"""The flap schedule: durations, jitter bounds, seeds, cycle counts and deadlines."""

import itertools
import random

import pytest

from scenarios.schedule import (
    FlapCycle,
    FlapSchedule,
    FlapTiming,
    disconnect_deadline,
    reconnect_deadline,
    user_rng,
)


def test_without_jitter_every_cycle_has_the_planned_durations() -> None:
    """With no jitter each cycle holds and pauses exactly as configured."""
    cycles = list(FlapSchedule(FlapTiming(connected_ms=100, disconnected_ms=50, cycles=3), random.Random(1)))
    assert [c.index for c in cycles] == [0, 1, 2]
    assert all(c.hold_s == pytest.approx(0.1) and c.pause_s == pytest.approx(0.05) for c in cycles)


def test_jitter_stays_within_its_fraction_and_varies() -> None:
    """Jittered durations stay within +/- the fraction and are not all the same."""
    timing = FlapTiming(connected_ms=100, disconnected_ms=50, jitter=0.2, cycles=2000)
    cycles = list(FlapSchedule(timing, random.Random(7)))
    holds = [c.hold_s for c in cycles]
    pauses = [c.pause_s for c in cycles]
    assert min(holds) >= 0.08 and max(holds) <= 0.12
    assert min(pauses) >= 0.04 and max(pauses) <= 0.06
    assert max(holds) - min(holds) > 0.03  # the whole band is used


def test_same_seed_and_user_give_the_same_schedule() -> None:
    """A seeded schedule is reproducible per user, and differs between users."""
    timing = FlapTiming(jitter=0.5, cycles=20, seed=42)
    first = list(FlapSchedule(timing, user_rng(42, 3)))
    again = list(FlapSchedule(timing, user_rng(42, 3)))
    other_user = list(FlapSchedule(timing, user_rng(42, 4)))
    assert first == again
    assert first != other_user


def test_zero_cycles_means_unbounded() -> None:
    """--flap-cycles 0 keeps yielding cycles until the caller stops."""
    schedule = FlapSchedule(FlapTiming(cycles=0), random.Random(0))
    assert len(list(itertools.islice(schedule, 500))) == 500


@pytest.mark.parametrize(
    "kwargs",
    [{"connected_ms": -1}, {"disconnected_ms": -0.5}, {"jitter": 1.0}, {"jitter": -0.1}, {"cycles": -2}],
)
def test_invalid_timing_is_refused(kwargs: dict[str, float]) -> None:
    """Negative durations, jitter outside [0, 1) and negative cycle counts raise."""
    with pytest.raises(ValueError):
        FlapTiming(**kwargs)  # type: ignore[arg-type]


def test_deadlines_absorb_a_late_wake_up() -> None:
    """The next connect is planned from the planned disconnect, not from a late wake-up."""
    cycle = FlapCycle(index=0, hold_s=0.1, pause_s=0.05)
    # 10.000 s: handshake done; hold until 10.100 s.
    planned = disconnect_deadline(10.0, cycle)
    assert planned == pytest.approx(10.1)
    # The wake-up came 7 ms late and the close took 2 ms: the reconnect stays at
    # 10.100 + 0.002 + 0.050, the 7 ms lateness is not carried forward.
    assert reconnect_deadline(planned, 0.002, cycle) == pytest.approx(10.152)
