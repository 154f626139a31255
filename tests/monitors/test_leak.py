"""Tests of the leak statistics: Theil–Sen slope and the per-cycle leak estimate."""

from __future__ import annotations

import math
import random

import pytest

from monitors.leak import (
    KIB,
    LeakEstimate,
    LeakUnknown,
    _pairwise_slopes,
    estimate_leak,
    leak_kb_per_cycle,
    theil_sen_slope,
)
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample

MIB = 1024 * KIB
BASE_RSS = 60 * MIB


def flapping(cycles: list[int], rss_kib: list[float]) -> list[ResourceSample]:
    """Flapping-phase samples, one per (cycles, rss) pair, a second apart."""
    return [
        ResourceSample(t_s=float(i), phase=PHASE_FLAPPING, cycles_completed=c, rss_bytes=int(r * KIB))
        for i, (c, r) in enumerate(zip(cycles, rss_kib, strict=True))
    ]


def noisy(values: list[float], sigma_kib: float, seed: int = 1) -> list[float]:
    """`values` plus seeded Gaussian noise, so tests are repeatable."""
    rng = random.Random(seed)
    return [v + rng.gauss(0.0, sigma_kib) for v in values]


CYCLES = list(range(0, 1000, 5))  # 200 samples, 5 cycles apart


class TestTheilSen:
    def test_exact_line(self) -> None:
        """An exact line gives its slope."""
        assert theil_sen_slope([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)

    def test_outliers_do_not_move_the_slope(self) -> None:
        """A few wild outliers leave the median slope on the line."""
        xs = list(range(30))
        ys = [3.0 * x for x in xs]
        ys[5] += 1000
        ys[17] -= 1000
        ys[25] += 5000
        assert theil_sen_slope(xs, ys) == pytest.approx(3.0)

    def test_fewer_than_two_distinct_x(self) -> None:
        """No slope without two distinct x values."""
        assert theil_sen_slope([], []) is None
        assert theil_sen_slope([1], [2]) is None
        assert theil_sen_slope([4, 4, 4], [1, 2, 3]) is None

    def test_pairs_with_equal_x_are_skipped(self) -> None:
        """Repeated x values do not produce infinite or zero slopes."""
        assert theil_sen_slope([0, 0, 1, 1], [0, 10, 2, 12]) == pytest.approx(2.0)

    def test_mismatched_lengths(self) -> None:
        """xs and ys of different length are a programming error."""
        with pytest.raises(ValueError, match="differ in length"):
            theil_sen_slope([1, 2], [1])

    def test_many_points_use_a_bounded_deterministic_subset(self) -> None:
        """Above the pair cap the slope uses about cap pairs, the same ones every time."""
        xs = [float(x) for x in range(2000)]
        ys = noisy([0.5 * x for x in xs], 3.0)
        slopes = _pairwise_slopes(xs, ys, 20_000)
        assert len(slopes) <= 20_000 + len(xs)
        assert slopes == _pairwise_slopes(xs, ys, 20_000)
        assert theil_sen_slope(xs, ys) == pytest.approx(0.5, rel=0.02)
        assert theil_sen_slope(xs, ys) == theil_sen_slope(xs, ys)


class TestLeakEstimate:
    def test_linear_leak_with_noise_and_outliers(self) -> None:
        """A steady 64 KiB/cycle leak under noise and spikes is measured within 10%."""
        rss = noisy([BASE_RSS / KIB + 64.0 * c for c in CYCLES], sigma_kib=256.0)
        for i in range(0, len(rss), 17):  # GC pauses, odd scrapes
            rss[i] += 8 * 1024
        estimate = leak_kb_per_cycle(flapping(CYCLES, rss))
        assert estimate is not None
        assert estimate.slope_kb_per_cycle == pytest.approx(64.0, rel=0.10)
        assert estimate.first_cycle == 250
        assert estimate.last_cycle == 995
        assert estimate.cycle_span == 745
        assert estimate.points == 150

    def test_leak_caught_before_absolute_growth_is_large(self) -> None:
        """40 cycles of a 64 KiB/cycle leak (2.5 MiB in all) already show the rate."""
        cycles = list(range(0, 41))
        rss = noisy([BASE_RSS / KIB + 64.0 * c for c in cycles], sigma_kib=32.0)
        estimate = leak_kb_per_cycle(flapping(cycles, rss))
        assert estimate is not None
        assert estimate.slope_kb_per_cycle == pytest.approx(64.0, rel=0.10)

    def test_plateau_after_warmup_is_not_a_leak(self) -> None:
        """Fast growth that levels off (allocator caches) gives a slope near zero."""
        rss = noisy([BASE_RSS / KIB + 16 * 1024 * (1 - math.exp(-c / 40)) for c in CYCLES], sigma_kib=64.0)
        estimate = leak_kb_per_cycle(flapping(CYCLES, rss))
        assert estimate is not None
        assert abs(estimate.slope_kb_per_cycle) < 1.0

    def test_slow_plateau_reaching_past_warmup(self) -> None:
        """Growth that only levels off after the warm-up still reads as no sustained leak."""
        rss = noisy([BASE_RSS / KIB + 32.0 * min(c, 550) for c in CYCLES], sigma_kib=64.0)
        estimate = leak_kb_per_cycle(flapping(CYCLES, rss))
        assert estimate is not None
        assert estimate.full_slope_kb_per_cycle > 1.0
        assert abs(estimate.slope_kb_per_cycle) < 1.0

    @pytest.mark.parametrize("step_at", [400, 500, 625, 700, 850])
    def test_single_step_is_not_a_leak(self, step_at: int) -> None:
        """One 4 MiB jump (a new allocator arena) anywhere mid-run stays under 2 KiB/cycle."""
        rss = noisy([BASE_RSS / KIB + (4096.0 if c >= step_at else 0.0) for c in CYCLES], sigma_kib=64.0)
        estimate = leak_kb_per_cycle(flapping(CYCLES, rss))
        assert estimate is not None
        assert abs(estimate.slope_kb_per_cycle) < 2.0

    def test_only_flapping_samples_count(self) -> None:
        """Baseline and settle samples, and samples without RSS, are left out of the fit."""
        samples = [
            ResourceSample(t_s=0.0, phase=PHASE_BASELINE, rss_bytes=1, cycles_completed=0),
            *flapping(CYCLES, [BASE_RSS / KIB + 10.0 * c for c in CYCLES]),
            ResourceSample(t_s=999.0, phase=PHASE_FLAPPING, cycles_completed=999),
            ResourceSample(t_s=1000.0, phase=PHASE_SETTLE, rss_bytes=1, cycles_completed=1000),
        ]
        estimate = leak_kb_per_cycle(samples)
        assert estimate is not None
        assert estimate.slope_kb_per_cycle == pytest.approx(10.0)

    def test_too_few_points(self) -> None:
        """Fewer than min_points samples after warm-up give no estimate, with the reason."""
        samples = flapping([0, 100, 200, 300, 400], [1000.0] * 5)
        assert leak_kb_per_cycle(samples) is None
        assert estimate_leak(samples) == LeakUnknown("only 4 memory samples during flapping after warm-up (need 6)")

    def test_too_few_cycles(self) -> None:
        """A window shorter than min_cycle_span cycles gives no estimate, with the reason."""
        samples = flapping(list(range(0, 16)), [1000.0] * 16)
        assert estimate_leak(samples) == LeakUnknown("only 11 flap cycles after warm-up (need 20)")

    def test_no_flapping_memory(self) -> None:
        """Without flapping samples that know RSS there is nothing to fit."""
        samples = [ResourceSample(t_s=0.0, phase=PHASE_FLAPPING, cycles_completed=5)]
        assert estimate_leak(samples) == LeakUnknown("no memory samples during flapping")

    def test_bad_warmup_fraction(self) -> None:
        """A warm-up fraction outside [0, 1) is refused."""
        with pytest.raises(ValueError, match="warmup_fraction"):
            estimate_leak([], warmup_fraction=1.0)

    def test_estimate_type(self) -> None:
        """A successful fit is a LeakEstimate carrying both slopes."""
        result = estimate_leak(flapping(CYCLES, [5.0 * c for c in CYCLES]))
        assert isinstance(result, LeakEstimate)
        assert result.full_slope_kb_per_cycle == pytest.approx(5.0)
        assert result.late_slope_kb_per_cycle == pytest.approx(5.0)
