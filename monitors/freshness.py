"""Metric freshness: how often a series really changes while the load changes.

A broker may cache its Prometheus gauges and refresh them every few seconds; sampled every
0.5 s such a gauge shows the same value for several samples, then steps. While clients
flap, every refresh of a live gauge brings a new value, so the gaps between observed
changes are the refresh interval (the median keeps a refresh that happened to show the same
value from stretching it). A gauge that never changes while clients come and go is suspect:
stale, or not the metric it is taken for.

Pure code: samples in, intervals out.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .sample import PHASE_FLAPPING, ResourceSample
from .settle import SERIES_READERS, SERIES_WORDS, fmt_seconds

Point = tuple[float, float]  # (t_s, value)

METRICS_SOURCE = "metrics"  # the source of Prometheus gauges, which may be cached, or stale
UNKNOWN_METRICS_REFRESH_S = 5.0  # a metrics gauge's refresh when the run has not shown it (a common exporter default)

MIN_CHANGE_GAPS = 2  # fewer observed gaps between changes give no interval
MIN_SUSPECT_POINTS = 6  # a series must be seen this often during flapping to be called suspect ...
MIN_SUSPECT_SPAN_S = 3.0  # ... over at least this long


def change_gaps_s(points: Sequence[Point]) -> list[float]:
    """Seconds between consecutive changes of value (the first change starts the count)."""
    change_times = [t for (_, before), (t, value) in zip(points, points[1:], strict=False) if value != before]
    return [later - earlier for earlier, later in zip(change_times, change_times[1:], strict=False)]


def refresh_interval_s(stretches: Iterable[Sequence[Point]]) -> float | None:
    """The median gap between changes over stretches of points taken while the load changed; None: too few."""
    gaps = [gap for points in stretches for gap in change_gaps_s(points)]
    if len(gaps) < MIN_CHANGE_GAPS:
        return None
    return float(statistics.median(gaps))


def never_changed(stretches: Iterable[Sequence[Point]]) -> bool:
    """Whether enough points over long enough all hold one value (a stale or wrong metric)."""
    points = [p for stretch in stretches for p in stretch]
    if len(points) < MIN_SUSPECT_POINTS:
        return False
    span = sum(stretch[-1][0] - stretch[0][0] for stretch in stretches if stretch)
    return span >= MIN_SUSPECT_SPAN_S and len({value for _, value in points}) == 1


@dataclass(frozen=True)
class SeriesFreshness:
    """One series' refresh interval as observed during flapping."""

    series: str  # a ResourceSample attribute: agents, rss_bytes, ...
    source: str  # where it came from: "metrics" (the Prometheus endpoint) or "process"
    refresh_s: float | None  # median gap between changes; None when it changed too rarely to tell
    points: int  # samples of it during flapping
    changes: int  # how many of them differed from the one before
    suspect: bool = False  # never changed during flapping

    def describe(self) -> str:
        """`agents (metrics): refreshed every 5 s`, or why it is suspect."""
        word = f"{SERIES_WORDS.get(self.series, self.series)} ({self.source})"
        if self.suspect:
            return f"{word}: never changed during flapping ({self.points} samples): stale or wrong metric?"
        if self.refresh_s is None:
            return f"{word}: changed {self.changes} times in {self.points} samples, too few to tell its refresh"
        return f"{word}: refreshed every {fmt_seconds(self.refresh_s)}"

    def to_dict(self) -> dict[str, Any]:
        """For the verdict JSON."""
        return {
            "source": self.source,
            "refresh_s": None if self.refresh_s is None else round(self.refresh_s, 3),
            "points": self.points,
            "changes": self.changes,
            "suspect": self.suspect,
        }


@dataclass(frozen=True)
class Freshness:
    """Every judged series' refresh interval, and which ones look stale."""

    sample_interval_s: float  # how often the monitor samples: no series can look fresher
    series: tuple[SeriesFreshness, ...] = field(default=())  # in SETTLE_SERIES order

    @property
    def suspects(self) -> tuple[str, ...]:
        """Series that never changed during flapping."""
        return tuple(s.series for s in self.series if s.suspect)

    def refresh_s(self) -> dict[str, float]:
        """Series -> refresh interval, for SettleWatch.

        A series whose interval the run did not show (a short flapping, a gauge that changed
        too seldom) gets the sampling interval when the process is read directly, and
        UNKNOWN_METRICS_REFRESH_S when it is a metrics gauge that may be cached: waiting
        longer costs a leaking server seconds, ending too soon fails a healthy broker.
        """
        unknown_s = {METRICS_SOURCE: UNKNOWN_METRICS_REFRESH_S}
        return {s.series: s.refresh_s or unknown_s.get(s.source, self.sample_interval_s) for s in self.series}

    def lines(self) -> list[str]:
        """One sentence per series, for the console and the web UI."""
        return [s.describe() for s in self.series]

    def to_dict(self) -> dict[str, Any]:
        """For the verdict's `monitor` section."""
        return {
            "sample_interval_s": self.sample_interval_s,
            "series": {s.series: s.to_dict() for s in self.series},
            "suspects": list(self.suspects),
            "lines": self.lines(),
        }


def flapping_stretches(samples: Sequence[ResourceSample], series: str) -> list[list[Point]]:
    """The series' known points during flapping, one list per unbroken stretch of flapping samples."""
    read = SERIES_READERS[series]
    stretches: list[list[Point]] = []
    current: list[Point] = []
    previous_round: int | None = None
    for sample in samples:
        value = read(sample)
        if sample.phase != PHASE_FLAPPING or not sample.alive or sample.flap_round != previous_round:
            if current:
                stretches.append(current)
            current = []
            previous_round = sample.flap_round if sample.phase == PHASE_FLAPPING else None
        if sample.phase == PHASE_FLAPPING and sample.alive and value is not None:
            current.append((sample.t_s, float(value)))
    if current:
        stretches.append(current)
    return stretches


def estimate_freshness(
    samples: Sequence[ResourceSample],
    sources: Mapping[str, str],
    sample_interval_s: float,
    suspect_series: Iterable[str] = (),
) -> Freshness:
    """Refresh intervals of `sources` (series -> source name) from the flapping samples.

    Only series in `suspect_series` may be called suspect: a gauge that must move when
    clients come and go (agents), not one that may rightly stay put (a single thread).
    """
    may_be_suspect = frozenset(suspect_series)
    found: list[SeriesFreshness] = []
    for name in SERIES_READERS:
        if name not in sources:
            continue
        stretches = flapping_stretches(samples, name)
        points = sum(len(s) for s in stretches)
        if points == 0:
            continue
        found.append(
            SeriesFreshness(
                series=name,
                source=sources[name],
                refresh_s=refresh_interval_s(stretches),
                points=points,
                changes=sum(_changes(s) for s in stretches),
                suspect=name in may_be_suspect and never_changed(stretches),
            )
        )
    return Freshness(sample_interval_s=sample_interval_s, series=tuple(found))


def _changes(points: Sequence[Point]) -> int:
    """How many points differ from the one before."""
    return sum(1 for (_, before), (_, value) in zip(points, points[1:], strict=False) if value != before)
