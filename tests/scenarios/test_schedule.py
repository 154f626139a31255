"""The flap schedule: durations, jitter distributions, disconnect styles, seeds, deadlines, the storm grid."""

import itertools
import random
import statistics

import pytest

from scenarios.disconnect import CLEAN, DisconnectMix
from scenarios.schedule import (
    EXPONENTIAL,
    JITTER_DISTRIBUTIONS,
    NORMAL,
    UNIFORM,
    FlapCycle,
    FlapSchedule,
    FlapTiming,
    StormGrid,
    disconnect_deadline,
    jittered_s,
    reconnect_deadline,
    start_offset_s,
    storm_grid,
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
    [
        {"connected_ms": -1},
        {"disconnected_ms": -0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"cycles": -2},
        {"jitter_dist": "poisson"},
        {"storm": True, "connected_ms": 0, "disconnected_ms": 0},
    ],
)
def test_invalid_timing_is_refused(kwargs: dict[str, float]) -> None:
    """Negative durations, jitter outside [0, 1), negative cycle counts, unknown distributions, a 0 ms storm raise."""
    with pytest.raises(ValueError):
        FlapTiming(**kwargs)  # type: ignore[arg-type]


def test_the_hold_counts_from_the_completed_handshake() -> None:
    """The disconnect is planned from the moment the handshake completed."""
    cycle = FlapCycle(index=0, hold_s=0.1, pause_s=0.05)
    assert disconnect_deadline(10.0, cycle) == pytest.approx(10.1)


def test_connects_are_one_period_apart_whatever_the_handshake_and_close_took() -> None:
    """The next connect is planned from this cycle's planned start: connect and close times come out of the pause."""
    cycle = FlapCycle(index=0, hold_s=0.1, pause_s=0.05)
    # 10.000 s: planned start; the handshake took 3 ms, the hold ran to 10.103 s, the close
    # took 2 ms: it is 10.105 s and the next connect is still at 10.150 s.
    assert reconnect_deadline(10.0, cycle, now=10.105) == pytest.approx(10.150)


def test_a_late_wake_up_does_not_push_later_cycles() -> None:
    """A connect that woke 12 ms late keeps the plan: the following pause is 12 ms shorter."""
    cycle = FlapCycle(index=3, hold_s=0.1, pause_s=0.05)
    planned_start = 10.0
    woke = planned_start + 0.012
    closed = disconnect_deadline(woke + 0.001, cycle) + 0.002
    assert reconnect_deadline(planned_start, cycle, now=closed) == pytest.approx(10.150)


def test_an_overrun_cycle_slips_and_never_bursts() -> None:
    """A cycle longer than its period (a 200 ms handshake) is followed by a connect right away, not earlier."""
    cycle = FlapCycle(index=0, hold_s=0.1, pause_s=0.05)
    closed = disconnect_deadline(10.0 + 0.2, cycle) + 0.002  # 10.302 s
    assert reconnect_deadline(10.0, cycle, now=closed) == pytest.approx(10.302)
    # The plan restarts there: the following cycle's next connect is one period later.
    assert reconnect_deadline(10.302, cycle, now=10.41) == pytest.approx(10.452)


def test_a_failed_connect_keeps_the_rate_of_attempts() -> None:
    """A connect refused after 1 ms is retried one period after its planned start, as a fixed reconnect interval."""
    cycle = FlapCycle(index=0, hold_s=0.1, pause_s=0.05)
    assert reconnect_deadline(10.0, cycle, now=10.001) == pytest.approx(10.150)


# --- jitter distributions ------------------------------------------------------------------


def _draws(distribution: str, jitter: float, count: int = 20_000, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [jittered_s(100.0, jitter, distribution, rng) for _ in range(count)]


@pytest.mark.parametrize("distribution", JITTER_DISTRIBUTIONS)
def test_no_jitter_means_the_planned_duration_whatever_the_distribution(distribution: str) -> None:
    """Jitter 0 gives exactly the planned duration, and so does a planned duration of 0."""
    rng = random.Random(0)
    assert jittered_s(100.0, 0.0, distribution, rng) == pytest.approx(0.1)
    assert jittered_s(0.0, 0.5, distribution, rng) == 0.0


def test_uniform_jitter_spreads_evenly_within_its_fraction() -> None:
    """uniform: every duration in [d(1-j), d(1+j)], mean d, the whole band used."""
    draws = _draws(UNIFORM, 0.3)
    assert 0.07 <= min(draws) < 0.072 and 0.128 < max(draws) <= 0.13
    assert statistics.fmean(draws) == pytest.approx(0.1, rel=0.01)


def test_normal_jitter_is_clamped_to_its_fraction_and_centred() -> None:
    """normal: sigma j/2, clamped to [d(1-j), d(1+j)] (about 4.6 % on the bounds), mean d."""
    draws = _draws(NORMAL, 0.4)
    assert min(draws) == pytest.approx(0.06) and max(draws) == pytest.approx(0.14)
    assert statistics.fmean(draws) == pytest.approx(0.1, rel=0.01)
    on_bounds = sum(d in (pytest.approx(0.06), pytest.approx(0.14)) for d in draws) / len(draws)
    assert on_bounds == pytest.approx(0.0455, abs=0.006)
    within_one_sigma = sum(abs(d - 0.1) <= 0.02 for d in draws) / len(draws)
    assert within_one_sigma == pytest.approx(0.683, abs=0.02)


def test_exponential_jitter_keeps_the_mean_with_a_long_capped_tail() -> None:
    """exponential: d(1-j) plus an exponential part of mean j x d, capped: in [d(1-j), d(1+9j)], mean d."""
    draws = _draws(EXPONENTIAL, 0.5, count=50_000)
    assert min(draws) >= 0.05 and min(draws) < 0.0501
    assert max(draws) <= 0.1 * (1 + 9 * 0.5)
    assert statistics.fmean(draws) == pytest.approx(0.1, rel=0.02)
    assert statistics.median(draws) < 0.09  # skewed: most durations are shorter than the mean
    assert max(draws) > 0.3  # and a few much longer


def test_seeded_distributions_repeat() -> None:
    """Each distribution draws the same durations from the same seed."""
    for distribution in JITTER_DISTRIBUTIONS:
        assert _draws(distribution, 0.5, count=50, seed=9) == _draws(distribution, 0.5, count=50, seed=9)


def test_the_schedule_uses_the_configured_distribution() -> None:
    """FlapSchedule draws holds and pauses from the timing's distribution."""
    timing = FlapTiming(connected_ms=100, disconnected_ms=100, jitter=0.5, jitter_dist=EXPONENTIAL, cycles=2000)
    holds = [c.hold_s for c in FlapSchedule(timing, random.Random(2))]
    assert min(holds) >= 0.05
    assert statistics.median(holds) < 0.09


# --- disconnect styles per cycle ----------------------------------------------------------


def test_cycles_draw_their_disconnect_style_reproducibly() -> None:
    """Each cycle carries a style from the mix; a seeded user gets the same sequence again."""
    timing = FlapTiming(jitter=0.2, cycles=200, seed=5)
    mix = DisconnectMix.parse("clean:1,abrupt:1,reset:1")
    first = [c.disconnect for c in FlapSchedule(timing, user_rng(5, 0), mix)]
    again = [c.disconnect for c in FlapSchedule(timing, user_rng(5, 0), mix)]
    assert first == again
    assert set(first) == {"clean", "abrupt", "reset"}


def test_without_a_mix_every_cycle_closes_cleanly_and_jitter_is_unchanged() -> None:
    """The default mix is `clean` and draws nothing: a seeded schedule is the same as before styles existed."""
    timing = FlapTiming(jitter=0.3, cycles=20, seed=1)
    cycles = list(FlapSchedule(timing, user_rng(1, 0)))
    assert {c.disconnect for c in cycles} == {CLEAN}
    rng = user_rng(1, 0)
    expected = []
    for _ in range(20):  # per cycle: the hold, then the pause, and no style draw
        expected.append((jittered_s(100, 0.3, UNIFORM, rng), jittered_s(50, 0.3, UNIFORM, rng)))
    assert [(c.hold_s, c.pause_s) for c in cycles] == expected


# --- storm mode ---------------------------------------------------------------------------


def test_storm_mode_has_no_jitter() -> None:
    """In storm mode every hold and pause is the planned one, jitter or not."""
    timing = FlapTiming(connected_ms=100, disconnected_ms=50, jitter=0.5, storm=True, cycles=50)
    cycles = list(FlapSchedule(timing, random.Random(3)))
    assert {(c.hold_s, c.pause_s) for c in cycles} == {(0.1, 0.05)}


def test_the_storm_grid_period_is_hold_plus_pause() -> None:
    """storm_grid gives a grid of period hold + pause, and none without storm mode."""
    assert storm_grid(FlapTiming(connected_ms=100, disconnected_ms=150, storm=True)) == StormGrid(0.25)
    assert storm_grid(FlapTiming(connected_ms=100, disconnected_ms=150)) is None
    with pytest.raises(ValueError):
        StormGrid(0.0)


def test_boundaries_are_multiples_of_the_period_since_the_epoch() -> None:
    """next_boundary is the first multiple of the period at or after the clock reading."""
    grid = StormGrid(0.25)
    assert grid.next_boundary(1000.01) == 1000.25
    assert grid.next_boundary(1000.25) == 1000.25
    assert grid.next_boundary(1000.2500001) == 1000.5
    assert grid.next_boundary(1_700_000_000.3) == pytest.approx(1_700_000_000.5)


def test_users_started_apart_connect_and_drop_together() -> None:
    """Users that start at different moments meet on the same boundaries, cycle after cycle."""
    grid = StormGrid(0.25)
    cycle = FlapCycle(index=0, hold_s=0.1, pause_s=0.15)
    # 1000.01 s, 1000.13 s, 1000.24 s: three users start; all wait for 1000.25 s.
    connects = [grid.next_boundary(start) for start in (1000.01, 1000.13, 1000.24)]
    assert connects == [1000.25] * 3
    # Each holds 0.1 s from the boundary (not from its own handshake) and closes in 1 to 9 ms.
    disconnects = [disconnect_deadline(boundary, cycle) for boundary in connects]
    assert disconnects == [pytest.approx(1000.35)] * 3
    close_times = (0.001, 0.004, 0.009)
    reconnects = [grid.next_boundary(d + close_s) for d, close_s in zip(disconnects, close_times, strict=True)]
    assert reconnects == [1000.5] * 3


def test_a_cycle_that_overruns_its_period_reconnects_on_the_following_boundary() -> None:
    """A close that ends after the next boundary moves the reconnect to the boundary after it."""
    grid = StormGrid(0.25)
    # 1000.25 s: connect; 1000.35 s: disconnect; the close hangs until 1000.52 s.
    assert grid.next_boundary(1000.52) == 1000.75


def test_the_seeded_cycles_are_pinned() -> None:
    """The schedule's iterator yields exactly what the generator it replaced yielded for this seed."""
    mix = DisconnectMix.parse("clean:2,abrupt,reset,half-open,handshake-abort")
    timing = FlapTiming(connected_ms=120, disconnected_ms=40, jitter=0.4, jitter_dist="normal", seed=7, cycles=4)
    cycles = list(FlapSchedule(timing, user_rng(7, 3), mix))
    assert [(c.index, c.hold_s, c.pause_s, c.disconnect) for c in cycles] == [
        (0, 0.11476778372011706, 0.047062598589138006, "abrupt"),
        (1, 0.08055737538999265, 0.056, "handshake-abort"),
        (2, 0.09534360004715792, 0.03966932857925255, "clean"),
        (3, 0.1343790729585118, 0.033710204706652265, "half-open"),
    ]
    iterator = iter(FlapSchedule(timing, user_rng(7, 3), mix))
    assert iter(iterator) is iterator and len(list(iterator)) == 4 and next(iterator, None) is None


# --- start offsets ---------------------------------------------------------------------------


def test_users_started_together_are_spread_over_the_period() -> None:
    """Users spawned at once get phases spread evenly over hold + pause: no two of 100 within 0.5 ms."""
    timing = FlapTiming(connected_ms=100, disconnected_ms=50)
    offsets = sorted(start_offset_s(timing, user) for user in range(100))
    assert offsets[0] == 0.0
    assert all(0 <= offset < 0.150 for offset in offsets)
    gaps = [later - earlier for earlier, later in zip(offsets, offsets[1:], strict=False)]
    assert min(gaps) > 0.0005
    assert max(gaps) < 3 * 0.150 / 100  # no big hole either


def test_a_long_hold_spreads_first_connects_over_one_second_only() -> None:
    """With a one-minute hold, users still all connect within the first second."""
    timing = FlapTiming(connected_ms=60_000, disconnected_ms=50)
    offsets = [start_offset_s(timing, user) for user in range(1000)]
    assert max(offsets) < 1.0
    assert max(offsets) > 0.99  # and over all of it


def test_storm_mode_and_a_zero_period_have_no_offset() -> None:
    """Storm users connect on the grid together; with no hold and no pause there is no phase to have."""
    assert start_offset_s(FlapTiming(storm=True), 7) == 0.0
    assert start_offset_s(FlapTiming(connected_ms=0, disconnected_ms=0), 7) == 0.0


def test_offsets_are_the_same_in_every_run() -> None:
    """No random draw: the same user gets the same phase."""
    timing = FlapTiming(connected_ms=100, disconnected_ms=50, seed=None)
    assert start_offset_s(timing, 5) == start_offset_s(timing, 5)
