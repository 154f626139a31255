"""Leak statistics: how fast the server's memory grows per flap cycle, robust to noise.

Pure code: samples in, numbers out. No clock, no sockets, no randomness.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .sample import PHASE_FLAPPING, ResourceSample

KIB = 1024  # "KB" in this pack means KiB, like ps and top

# Beyond this many pairs the slope is taken over an evenly strided subset of them,
# so a long run costs O(n + MAX_PAIRS) instead of O(n²).
MAX_PAIRS = 20_000


def _pairwise_slopes(xs: Sequence[float], ys: Sequence[float], max_pairs: int) -> list[float]:
    """Slopes of point pairs with distinct x; a deterministic strided subset when there are many."""
    n = len(xs)
    total = n * (n - 1) // 2
    stride = max(1, math.ceil(total / max_pairs))
    slopes: list[float] = []
    for i in range(n):
        # The offset rotates with i so the subset covers every lag, not only lags 1, 1+stride, ...
        for j in range(i + 1 + (i % stride), n, stride):
            dx = xs[j] - xs[i]
            if dx != 0:
                slopes.append((ys[j] - ys[i]) / dx)
    return slopes


def theil_sen_slope(xs: Sequence[float], ys: Sequence[float], max_pairs: int = MAX_PAIRS) -> float | None:
    """Median of the pairwise slopes (pairs with equal x skipped); None below 2 distinct x.

    Up to `max_pairs` pairs all are used; above, an evenly strided subset of about
    `max_pairs` pairs, the same subset every time.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} != {len(ys)}")
    if len(set(xs)) < 2:
        return None
    slopes = _pairwise_slopes(xs, ys, max_pairs)
    if not slopes:  # only possible when the stride skipped every distinct-x pair
        slopes = _pairwise_slopes(xs, ys, len(xs) * len(xs))
    return float(statistics.median(slopes))


@dataclass(frozen=True)
class LeakEstimate:
    """A fitted memory trend over the flapping phase, after warm-up."""

    slope_kb_per_cycle: float  # the reported trend: the smaller of the two fits below
    full_slope_kb_per_cycle: float  # Theil–Sen over the whole post-warm-up window
    late_slope_kb_per_cycle: float | None  # Theil–Sen over its second half (None: too few points)
    points: int  # samples in the post-warm-up window
    first_cycle: int  # cycles_completed of the window's first sample
    last_cycle: int  # cycles_completed of the window's last sample

    @property
    def cycle_span(self) -> int:
        """Flap cycles covered by the window."""
        return self.last_cycle - self.first_cycle


@dataclass(frozen=True)
class LeakUnknown:
    """No trend could be fitted; `reason` says why, in words for the user."""

    reason: str


def estimate_leak(
    samples: Sequence[ResourceSample],
    warmup_fraction: float = 0.25,
    min_points: int = 6,
    min_cycle_span: int = 20,
) -> LeakEstimate | LeakUnknown:
    """Fit resident memory (KiB) against flap cycles completed, over the flapping phase.

    Choices, and why:

    - Only flapping-phase samples with a known RSS count, and the first
      `warmup_fraction` of their cycle range is dropped: allocators, caches and
      JITs grow fast at first and then plateau, which is not a leak.
    - The fit is Theil–Sen (median of pairwise slopes), so noise and a few
      outliers (a GC pause, one odd scrape) barely move it.
    - Memory is fitted against cycles, not time, so the result reads "KiB kept
      per connect/disconnect cycle" and a steady leak is caught from its rate
      long before its absolute growth gets large.
    - Theil–Sen over a single step (an allocator arena added once) still gives a
      nonzero slope. To count only *sustained* growth, the slope is also fitted
      over the second half of the window and the smaller of the two is
      reported: a steady leak shows in both, a step or a late plateau shows in
      at most one. (A step exactly in the middle of the window is flat in the
      second half; elsewhere fewer than half of the pairs straddle it in the
      fit that contains it, so the median stays near zero.)
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    flapping = [s for s in samples if s.phase == PHASE_FLAPPING and s.rss_bytes is not None]
    if not flapping:
        return LeakUnknown("no memory samples during flapping")
    first = min(s.cycles_completed for s in flapping)
    last = max(s.cycles_completed for s in flapping)
    cutoff = first + warmup_fraction * (last - first)
    window = sorted((s for s in flapping if s.cycles_completed >= cutoff), key=lambda s: s.cycles_completed)
    if len(window) < min_points:
        return LeakUnknown(f"only {len(window)} memory samples during flapping after warm-up (need {min_points})")
    span = window[-1].cycles_completed - window[0].cycles_completed
    if span < min_cycle_span:
        return LeakUnknown(f"only {span} flap cycles after warm-up (need {min_cycle_span})")

    xs = [float(s.cycles_completed) for s in window]
    ys = [s.rss_bytes / KIB for s in window if s.rss_bytes is not None]
    full = theil_sen_slope(xs, ys)
    assert full is not None  # span >= min_cycle_span > 0 means two distinct x

    middle = (xs[0] + xs[-1]) / 2
    late_xs = [x for x in xs if x >= middle]
    late_ys = ys[len(xs) - len(late_xs) :]
    late = theil_sen_slope(late_xs, late_ys) if len(late_xs) >= 3 else None

    return LeakEstimate(
        slope_kb_per_cycle=full if late is None else min(full, late),
        full_slope_kb_per_cycle=full,
        late_slope_kb_per_cycle=late,
        points=len(window),
        first_cycle=window[0].cycles_completed,
        last_cycle=window[-1].cycles_completed,
    )


def leak_kb_per_cycle(
    samples: Sequence[ResourceSample],
    warmup_fraction: float = 0.25,
    min_points: int = 6,
    min_cycle_span: int = 20,
) -> LeakEstimate | None:
    """The estimate of `estimate_leak`, or None when it cannot fit one (its reason says why)."""
    result = estimate_leak(samples, warmup_fraction, min_points, min_cycle_span)
    return result if isinstance(result, LeakEstimate) else None
