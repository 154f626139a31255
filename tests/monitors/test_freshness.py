"""Metric freshness: a series' refresh interval from the gaps between its changes during flapping."""

from __future__ import annotations

import dataclasses

from monitors.freshness import (
    UNKNOWN_METRICS_REFRESH_S,
    Freshness,
    SeriesFreshness,
    change_gaps_s,
    estimate_freshness,
    refresh_interval_s,
)
from monitors.monitor import ResourceMonitor
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample

STEP_S = 0.5  # the monitor's sampling interval in these scripts


def cached(t_s: float, refresh_s: float) -> int:
    """A gauge of a load that changes all the time, refreshed only every `refresh_s`."""
    return 100 + int(t_s // refresh_s) % 7


def flapping(n: int, start_s: float = 0.0, flap_round: int = 1, **series) -> list[ResourceSample]:
    """`n` flapping samples every STEP_S; each keyword maps a series to a function of t."""
    return [
        ResourceSample(
            start_s + i * STEP_S,
            phase=PHASE_FLAPPING,
            flap_round=flap_round,
            **{name: f(start_s + i * STEP_S) for name, f in series.items()},
        )
        for i in range(n)
    ]


def test_change_gaps_count_from_the_first_change() -> None:
    """Gaps are between changes: the value held before the first change says nothing of the interval."""
    points = [(0.0, 1), (0.5, 1), (1.0, 2), (1.5, 2), (3.0, 3), (3.5, 4)]
    assert change_gaps_s(points) == [2.0, 0.5]


def test_a_gauge_cached_for_5_s_refreshes_every_5_s() -> None:
    """Sampled every 0.5 s, a gauge refreshed every 5 s shows a 5 s interval."""
    points = [(i * STEP_S, float(cached(i * STEP_S, 5.0))) for i in range(60)]
    assert refresh_interval_s([points]) == 5.0


def test_a_refresh_showing_the_same_value_does_not_stretch_the_interval() -> None:
    """One refresh that happened to bring the same value makes one 10 s gap; the median stays 5 s."""
    values = [1, 2, 3, 3, 4, 5, 6]  # one value per 5 s refresh; the fourth equals the third
    points = [(i * STEP_S, float(values[int(i * STEP_S // 5)])) for i in range(70)]
    assert refresh_interval_s([points]) == 5.0


def test_too_few_changes_give_no_interval() -> None:
    """A single change (one gap fewer than needed) tells no interval."""
    assert refresh_interval_s([[(0.0, 1), (1.0, 2), (2.0, 2)]]) is None


def test_gaps_never_span_two_stretches() -> None:
    """The settle between two rounds is not a refresh gap: stretches are measured apart."""
    first = [(0.0, 1), (0.5, 2), (1.0, 3)]
    second = [(30.0, 9), (30.5, 8), (31.0, 7)]
    assert refresh_interval_s([first, second]) == 0.5


def test_estimate_names_a_gauge_that_never_changed_during_flapping_as_suspect() -> None:
    """Agents stuck at 0 while the process series move: agents is suspect, the live series get the sample interval."""
    samples = [
        ResourceSample(-1.0, phase=PHASE_BASELINE, agents=0, rss_bytes=1),
        *flapping(20, agents=lambda t: 0, rss_bytes=lambda t: int(t * 1000), open_fds=lambda t: cached(t, 2.0)),
        ResourceSample(11.0, phase=PHASE_SETTLE, agents=0, rss_bytes=1),
    ]
    freshness = estimate_freshness(
        samples, {"rss_bytes": "process", "open_fds": "process", "agents": "metrics"}, STEP_S, ["agents"]
    )
    assert freshness.suspects == ("agents",)
    # A metrics gauge of unknown refresh is given a common exporter's 5 s, not the sampling interval.
    assert freshness.refresh_s() == {"rss_bytes": 0.5, "open_fds": 2.0, "agents": UNKNOWN_METRICS_REFRESH_S}
    by_name = {s.series: s for s in freshness.series}
    assert by_name["agents"].describe() == (
        "agents (metrics): never changed during flapping (20 samples): stale or wrong metric?"
    )
    assert by_name["open_fds"].describe() == "open fds (process): refreshed every 2 s"
    assert freshness.to_dict()["series"]["agents"] == {
        "source": "metrics",
        "refresh_s": None,
        "points": 20,
        "changes": 0,
        "suspect": True,
    }
    assert freshness.to_dict()["lines"] == [s.describe() for s in freshness.series]


def test_a_short_flapping_is_too_little_to_call_a_gauge_suspect() -> None:
    """Three unchanged samples are not enough evidence of a stale gauge."""
    freshness = estimate_freshness(flapping(3, agents=lambda t: 0), {"agents": "metrics"}, STEP_S, ["agents"])
    assert freshness.suspects == ()


def test_threads_may_stay_put() -> None:
    """Only the series named as may-be-suspect are judged: one thread for good is fine."""
    freshness = estimate_freshness(flapping(20, threads=lambda t: 1), {"threads": "metrics"}, STEP_S, [])
    assert freshness.suspects == ()
    assert freshness.series == (
        SeriesFreshness(series="threads", source="metrics", refresh_s=None, points=20, changes=0),
    )


class SeriesSampler:
    """A scripted sampler that declares its series and source, like the real samplers."""

    def __init__(self, source: str, series: tuple[str, ...], script: list[ResourceSample]) -> None:
        self.source = source  # as PrometheusSampler.source
        self.series = series  # what it measures
        self.script = list(script)  # answered in order

    def describe(self) -> str:
        return self.source

    def sample(self, now_s: float) -> ResourceSample:
        return dataclasses.replace(self.script.pop(0), t_s=now_s)


def test_the_monitor_reports_the_freshness_of_what_each_source_gives() -> None:
    """The process sampler's memory wins over the endpoint's; the endpoint's cached agents show their 5 s refresh."""
    clock = [0.0]
    n = 40
    process = SeriesSampler(
        "process",
        ("rss_bytes", "open_fds", "threads"),
        [ResourceSample(0, rss_bytes=1000 + i, open_fds=10 + i % 3, threads=1) for i in range(n)],
    )
    metrics = SeriesSampler(
        "metrics",
        ("rss_bytes", "open_fds", "threads", "agents"),
        [ResourceSample(0, rss_bytes=7, open_fds=7, threads=7, agents=cached(i * STEP_S, 5.0)) for i in range(n)],
    )
    monitor = ResourceMonitor(
        [process, metrics], STEP_S, phase_of=lambda: PHASE_FLAPPING, cycles_of=lambda: 0, clock=lambda: clock[0]
    )
    for _ in range(n):
        monitor.poll()
        clock[0] += STEP_S
    freshness = monitor.freshness()
    assert isinstance(freshness, Freshness)
    assert monitor.series_sources() == {
        "rss_bytes": "process",
        "open_fds": "process",
        "threads": "process",
        "agents": "metrics",
    }
    assert freshness.refresh_s()["agents"] == 5.0
    assert freshness.suspects == ()
