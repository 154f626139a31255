"""Tests of the Timeline: phase levels, deaths, restarts and counts."""

from __future__ import annotations

from typing import Any

from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample
from monitors.timeline import ResourceLevels, Timeline

MIB = 1024 * 1024


def sample(t_s: float, phase: str = PHASE_BASELINE, **fields: Any) -> ResourceSample:
    """A sample at `t_s` in `phase` with the given measured fields."""
    return ResourceSample(t_s=t_s, phase=phase, **fields)


def test_baseline_is_per_metric_median() -> None:
    """Baseline levels are the medians of the baseline samples, metric by metric."""
    timeline = Timeline(
        [
            sample(100.0, rss_bytes=60 * MIB, open_fds=10, threads=4, agents=0, tcp_states={"LISTEN": 1}),
            sample(
                101.0, rss_bytes=62 * MIB, open_fds=12, threads=4, agents=0, tcp_states={"LISTEN": 1, "ESTABLISHED": 1}
            ),
            sample(102.0, rss_bytes=61 * MIB, open_fds=11, threads=5, agents=None, tcp_states={"LISTEN": 1}),
            sample(103.0, PHASE_FLAPPING, rss_bytes=99 * MIB, open_fds=99),
        ]
    )
    assert timeline.baseline() == ResourceLevels(
        source="baseline",
        sample_count=3,
        rss_bytes=61 * MIB,
        open_fds=11,
        threads=4,
        held_connections=0,
        agents=0,
        held_tcp_states={},
    )


def test_baseline_without_samples_or_metric() -> None:
    """Metrics never observed, or no baseline samples at all, give None."""
    assert Timeline([sample(0.0, rss_bytes=MIB)]).baseline().open_fds is None
    empty = Timeline([sample(0.0, PHASE_FLAPPING, rss_bytes=MIB)]).baseline()
    assert empty == ResourceLevels(source="none", sample_count=0)


def test_settled_uses_late_median_for_memory_and_last_value_for_handles() -> None:
    """Settled RSS is the median of the last half; fds, connections and agents the last value."""
    timeline = Timeline(
        [
            sample(0.0, rss_bytes=60 * MIB),
            sample(1.0, PHASE_FLAPPING, rss_bytes=90 * MIB, open_fds=500),
            sample(
                2.0, PHASE_SETTLE, rss_bytes=80 * MIB, open_fds=40, agents=9, tcp_states={"CLOSE_WAIT": 5, "LISTEN": 1}
            ),
            sample(3.0, PHASE_SETTLE, rss_bytes=70 * MIB, open_fds=30, agents=3),
            sample(
                4.0,
                PHASE_SETTLE,
                rss_bytes=66 * MIB,
                open_fds=20,
                agents=1,
                tcp_states={"CLOSE_WAIT": 2, "TIME_WAIT": 7, "LISTEN": 1},
            ),
            sample(5.0, PHASE_SETTLE, rss_bytes=64 * MIB, open_fds=None, agents=None),
        ]
    )
    assert timeline.settled() == ResourceLevels(
        source="settle",
        sample_count=4,
        rss_bytes=65 * MIB,
        open_fds=20,
        threads=None,
        held_connections=2,
        agents=1,
        held_tcp_states={"CLOSE_WAIT": 2},
    )


def test_settled_from_one_settle_sample() -> None:
    """A single settle sample is its own last half."""
    timeline = Timeline([sample(0.0, PHASE_SETTLE, rss_bytes=5 * MIB)])
    assert timeline.settled().rss_bytes == 5 * MIB


def test_settled_falls_back_to_flapping() -> None:
    """Without settle samples the flapping samples stand in, marked as such."""
    timeline = Timeline(
        [
            sample(0.0, rss_bytes=60 * MIB),
            sample(1.0, PHASE_FLAPPING, rss_bytes=70 * MIB, open_fds=30),
            sample(2.0, PHASE_FLAPPING, rss_bytes=72 * MIB, open_fds=31),
        ]
    )
    settled = timeline.settled()
    assert settled.source == "flapping"
    assert settled.sample_count == 2
    assert settled.rss_bytes == 72 * MIB
    assert settled.open_fds == 31


def test_settled_with_neither_phase() -> None:
    """A run that never got past baseline has no settled levels."""
    assert Timeline([sample(0.0, rss_bytes=MIB)]).settled() == ResourceLevels("none", 0)


def test_first_death() -> None:
    """The first sample that saw the server gone is found; None when it never went."""
    dead = sample(7.5, PHASE_FLAPPING, alive=False)
    timeline = Timeline([sample(2.0), dead, sample(8.0, PHASE_FLAPPING, alive=False)])
    assert timeline.first_death() is dead
    assert timeline.relative_t_s(dead) == 5.5
    assert Timeline([sample(0.0)]).first_death() is None


def test_restart_is_a_pid_change() -> None:
    """A known pid that changes is a restart; unknown pids in between are ignored."""
    timeline = Timeline([sample(0.0, pid=123), sample(1.0), sample(2.0, pid=123), sample(3.0, pid=456)])
    assert timeline.restarted()
    assert timeline.pid_change() == (123, 456)
    assert not Timeline([sample(0.0, pid=1), sample(1.0), sample(2.0, pid=1)]).restarted()
    assert not Timeline([sample(0.0), sample(1.0)]).restarted()


def test_count_by_phase() -> None:
    """Every phase is counted, including phases without samples."""
    timeline = Timeline([sample(0.0), sample(1.0), sample(2.0, PHASE_FLAPPING)])
    assert timeline.count_by_phase() == {"baseline": 2, "flapping": 1, "settle": 0}


def test_append_and_snapshot() -> None:
    """Appending adds a sample; `samples` is a snapshot that later appends do not change."""
    timeline = Timeline()
    assert len(timeline) == 0
    assert timeline.start_t_s is None
    timeline.append(sample(3.0))
    snapshot = timeline.samples
    timeline.append(sample(4.0))
    assert len(snapshot) == 1
    assert [s.t_s for s in timeline] == [3.0, 4.0]
    assert timeline.start_t_s == 3.0


def test_has_observations() -> None:
    """Phase markers alone observe nothing; a measurement or a death does."""
    assert not Timeline([sample(0.0), sample(1.0, PHASE_FLAPPING)]).has_observations()
    assert Timeline([sample(0.0, agents=0)]).has_observations()
    assert Timeline([sample(0.0, alive=False)]).has_observations()
    assert not Timeline([sample(0.0)]).knows_pid()
    assert Timeline([sample(0.0, pid=9)]).knows_pid()
