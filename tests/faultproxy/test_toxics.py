"""The pure toxic decisions: latency, jitter, pacing and reset choices with fixed times and seeds."""

from __future__ import annotations

import random

import pytest

from faultproxy.toxics import DirectionSchedule, ResetPeer, ToxicSettings, derive_rng, latency_delay_s


def releases(schedule: DirectionSchedule, now: float, size: int) -> list[float]:
    """Release times of the slices of one chunk."""
    return [release for release, _ in schedule.schedule(now, size)]


def test_latency_without_jitter_is_exact() -> None:
    """Without jitter every chunk is delayed by exactly the latency."""
    assert latency_delay_s(100, 0, random.Random(1)) == pytest.approx(0.1)


def test_jitter_stays_within_bounds_and_uses_them() -> None:
    """Delays fall within latency ± jitter and spread over most of that range."""
    rng = random.Random(7)
    delays = [latency_delay_s(100, 30, rng) for _ in range(1000)]
    assert all(0.07 <= delay <= 0.13 for delay in delays)
    assert min(delays) < 0.075 and max(delays) > 0.125


def test_jitter_larger_than_latency_is_floored_at_zero() -> None:
    """A draw below zero becomes no delay, never a negative one."""
    rng = random.Random(3)
    delays = [latency_delay_s(10, 50, rng) for _ in range(200)]
    assert min(delays) == 0.0 and max(delays) <= 0.06


def test_pass_through_releases_whole_chunks_at_once() -> None:
    """With no toxic a chunk leaves whole, at the time it was read."""
    schedule = DirectionSchedule(ToxicSettings(), random.Random(1))
    assert schedule.is_pass_through
    assert schedule.schedule(5.0, 70_000) == [(5.0, 70_000)]
    assert schedule.schedule(5.0, 0) == []


def test_latency_delays_each_chunk() -> None:
    """Each chunk is released latency after it was read."""
    schedule = DirectionSchedule(ToxicSettings(latency_ms=100), random.Random(1))
    assert not schedule.is_pass_through
    assert schedule.schedule(1.0, 10) == [(pytest.approx(1.1), 10)]
    assert schedule.schedule(1.5, 10) == [(pytest.approx(1.6), 10)]


def test_jitter_never_reorders_chunks() -> None:
    """Release times never go backwards, even when a later chunk draws a shorter delay."""
    schedule = DirectionSchedule(ToxicSettings(latency_ms=100, jitter_ms=100), random.Random(11))
    # A chunk every millisecond for a second: delays of 0-200 ms would reorder many of them.
    arrivals = [index / 1000 for index in range(1000)]
    times = [releases(schedule, now, 100)[0] for now in arrivals]
    assert times == sorted(times)
    assert all(release >= now for release, now in zip(times, arrivals, strict=True))
    assert any(later < earlier + 0.1 for earlier, later in zip(times, times[1:], strict=False))


def test_bandwidth_paces_a_large_chunk_in_100_ms_slices() -> None:
    """20 KiB at 10 KiB/s leaves as 1 KiB slices, one every 100 ms, the last at 2 s."""
    schedule = DirectionSchedule(ToxicSettings(bandwidth_kbps=10), random.Random(1))
    slices = schedule.schedule(0.0, 20 * 1024)
    assert [length for _, length in slices] == [1024] * 20
    assert [release for release, _ in slices] == pytest.approx([0.1 * (index + 1) for index in range(20)])


def test_bandwidth_queues_back_to_back_chunks() -> None:
    """A chunk read while the link is busy waits for the earlier one."""
    schedule = DirectionSchedule(ToxicSettings(bandwidth_kbps=10), random.Random(1))
    # 0 s: 10 KiB read, on the wire until 1 s; 0.5 s: 10 KiB more, on the wire from 1 s to 2 s.
    assert releases(schedule, 0.0, 10 * 1024)[-1] == pytest.approx(1.0)
    assert releases(schedule, 0.5, 10 * 1024)[-1] == pytest.approx(2.0)


def test_bandwidth_earns_no_burst_while_idle() -> None:
    """An idle link does not save up credit: after a pause, 1 KiB still takes 100 ms."""
    schedule = DirectionSchedule(ToxicSettings(bandwidth_kbps=10), random.Random(1))
    assert releases(schedule, 0.0, 1024) == [pytest.approx(0.1)]
    assert releases(schedule, 10.0, 1024) == [pytest.approx(10.1)]


def test_small_bandwidth_slices_are_at_least_one_byte() -> None:
    """At 1 KiB/s a slice is 102 bytes, the last one shorter."""
    schedule = DirectionSchedule(ToxicSettings(bandwidth_kbps=1), random.Random(1))
    slices = schedule.schedule(0.0, 250)
    assert [length for _, length in slices] == [102, 102, 46]
    assert slices[-1][0] == pytest.approx(250 / 1024)


def test_latency_then_bandwidth() -> None:
    """Latency delays a chunk onto the link, then the link takes its transfer time."""
    schedule = DirectionSchedule(ToxicSettings(latency_ms=100, bandwidth_kbps=10), random.Random(1))
    assert releases(schedule, 0.0, 1024) == [pytest.approx(0.2)]


def test_reset_rate_follows_the_percentage() -> None:
    """1000 decisions at 30 % reset between 27 % and 33 % of connections."""
    reset_peer = ResetPeer(pct=30)
    rng = derive_rng(12345, "reset")
    chosen = sum(reset_peer.chooses(rng) for _ in range(1000))
    assert 270 <= chosen <= 330


def test_reset_decisions_repeat_with_the_seed() -> None:
    """The same seed gives the same sequence of decisions; another seed a different one."""

    def decisions(seed: int) -> list[bool]:
        rng = derive_rng(seed, "reset")
        return [ResetPeer(pct=50).chooses(rng) for _ in range(100)]

    assert decisions(1) == decisions(1)
    assert decisions(1) != decisions(2)


def test_reset_extremes() -> None:
    """0 % never resets and 100 % always does."""
    rng = random.Random(5)
    assert not any(ResetPeer(pct=0).chooses(rng) for _ in range(1000))
    assert all(ResetPeer(pct=100).chooses(rng) for _ in range(1000))


def test_reset_timing() -> None:
    """With no delay the first client chunk is swallowed and the reset is immediate; with one, traffic flows."""
    assert ResetPeer(pct=100).swallows_first_chunk
    assert ResetPeer(pct=100).reset_at(3.0) == 3.0
    assert not ResetPeer(pct=100, after_ms=250).swallows_first_chunk
    assert ResetPeer(pct=100, after_ms=250).reset_at(3.0) == pytest.approx(3.25)


def test_derived_streams_are_independent() -> None:
    """Each named stream has its own reproducible sequence."""
    assert derive_rng(1, "jitter", 0, "upstream").random() == derive_rng(1, "jitter", 0, "upstream").random()
    assert derive_rng(1, "jitter", 0, "upstream").random() != derive_rng(1, "jitter", 0, "downstream").random()


def test_describe_names_enabled_toxics() -> None:
    """The start log names each enabled toxic by its flags, and nothing when all are off."""
    assert ToxicSettings().describe() == []
    assert ToxicSettings(latency_ms=100, jitter_ms=10, bandwidth_kbps=8, reset_pct=2.5).describe() == [
        "--latency-ms 100 --jitter-ms 10",
        "--bandwidth-kbps 8",
        "--reset-pct 2.5 --reset-after-ms 0",
    ]
