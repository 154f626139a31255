"""The least run time (-t) that fits the phases: baseline, some flapping, settle."""

from __future__ import annotations

from scenarios.phase_plan import PHASE_FLAPPING, PhasePlan


def test_the_least_run_time_is_baseline_plus_a_second_of_flapping_plus_settle() -> None:
    """With the default 150 ms period, a 2 s baseline and a 5 s settle need 8 s: 2 + 1 + 5."""
    assert PhasePlan(2.0, 5.0).least_run_time_s() == 8.0


def test_a_long_hold_needs_only_the_first_connects() -> None:
    """A -t inside a long hold still flaps every user (each connects within a second): an interrupted run."""
    assert PhasePlan(0.5, 0.5).least_run_time_s() == 2.0
    assert PhasePlan(0.5, 0.5).run_time_problem(2.0) is None


def test_a_run_time_below_the_least_gets_one_line_naming_t() -> None:
    """-t 3s with 2 s baseline and 5 s settle: one line naming -t, the least run time in whole seconds, the phases."""
    problem = PhasePlan(2.0, 5.0).run_time_problem(3.0)
    assert problem == (
        "-t 3s: too short for the phases; the least run time is 8s (2 s baseline + 1 s of flapping + 5 s settle)"
    )


def test_the_least_run_time_is_rounded_up_to_whole_seconds() -> None:
    """Locust's -t is whole seconds: 0.5 + 1 + 0.2 s needs -t 2s, and -t 2s fits."""
    plan = PhasePlan(0.5, 0.2)
    assert "the least run time is 2s" in (plan.run_time_problem(1.0) or "")
    assert plan.run_time_problem(2.0) is None


def test_a_run_time_that_fits_leaves_the_flapping_its_time() -> None:
    """At the least run time the plan still flaps for a second between baseline and settle."""
    plan = PhasePlan(2.0, 5.0, run_time_s=PhasePlan(2.0, 5.0).least_run_time_s())
    assert plan.advance(2.0, users_done=False) == PHASE_FLAPPING
    assert plan.advance(2.9, users_done=False) == PHASE_FLAPPING
