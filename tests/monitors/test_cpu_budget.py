"""A costly reading is paced so that it takes at most its share of a core, on an injected clock."""

from __future__ import annotations

import pytest

from monitors.cpu_budget import CpuBudget


def test_the_first_reading_is_due_and_a_cheap_one_is_due_again_at_once() -> None:
    """1 ms of CPU at a 2 % share: due again 50 ms later, so every 0.5 s sample reads."""
    budget = CpuBudget(0.02)
    assert budget.due(0.0)
    budget.spent(0.0, 0.001)
    assert not budget.due(0.049)
    assert budget.due(0.05)


def test_a_costly_reading_skips_samples_until_its_share_is_back() -> None:
    """40 ms at 2 %: the next reading is 2 s later, whatever the sampling interval."""
    budget = CpuBudget(0.02)
    budget.spent(10.0, 0.040)
    assert [budget.due(10.0 + 0.5 * n) for n in range(1, 6)] == [False, False, False, True, True]


def test_readings_over_a_long_run_take_at_most_their_share() -> None:
    """Sampled every 0.5 s for 100 s at 30 ms a reading: the CPU spent stays within 2 % of the time."""
    budget = CpuBudget(0.02)
    spent = 0.0
    for n in range(200):
        now = n * 0.5
        if budget.due(now):
            budget.spent(now, 0.030)
            spent += 0.030
    assert spent <= 0.02 * 100 + 0.030


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_a_share_outside_a_core_is_refused(share: float) -> None:
    """A share must be more than nothing and at most one core."""
    with pytest.raises(ValueError, match="share"):
        CpuBudget(share)
