"""The run's phases, driven by elapsed time and the users' progress."""

from scenarios.phases import PHASE_DONE, PhasePlan


def test_phases_follow_baseline_flapping_settle_done() -> None:
    """Baseline until its time is up, flapping until users are done, then settle, then done."""
    plan = PhasePlan(baseline_s=2, settle_s=5)
    assert plan.advance(0.0, users_done=False) == "baseline"
    assert plan.advance(1.9, users_done=True) == "baseline"  # no user has connected yet
    assert plan.advance(2.0, users_done=False) == "flapping"
    assert plan.advance(30.0, users_done=False) == "flapping"
    assert plan.advance(31.0, users_done=True) == "settle"
    assert plan.advance(35.9, users_done=True) == "settle"
    assert plan.advance(36.0, users_done=True) == PHASE_DONE
    assert not plan.flapping_cut_short


def test_run_time_bounds_the_whole_run_settle_included() -> None:
    """With a run time, flapping ends early enough for the settle phase to fit."""
    plan = PhasePlan(baseline_s=1, settle_s=3, run_time_s=10)
    assert plan.advance(1.0, users_done=False) == "flapping"
    assert plan.advance(6.9, users_done=False) == "flapping"
    assert plan.advance(7.0, users_done=False) == "settle"
    assert plan.flapping_cut_short
    assert plan.advance(10.0, users_done=False) == PHASE_DONE


def test_zero_baseline_and_settle_go_straight_through() -> None:
    """Zero-length phases are skipped, not stalled on."""
    plan = PhasePlan(baseline_s=0, settle_s=0)
    assert plan.advance(0.0, users_done=False) == "flapping"
    assert plan.advance(1.0, users_done=True) == PHASE_DONE
