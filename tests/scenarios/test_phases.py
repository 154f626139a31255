"""The run's phases, driven by elapsed time and the users' progress."""

from scenarios.phase_plan import PHASE_DONE, PhasePlan


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


def test_two_rounds_repeat_flapping_and_settle() -> None:
    """Each round flaps until its users are done, then settles; after the last settle the run is done."""
    plan = PhasePlan(baseline_s=2, settle_s=5, rounds=2)
    assert (plan.advance(0.0, users_done=False), plan.flap_round) == ("baseline", 0)
    assert (plan.advance(2.0, users_done=False), plan.flap_round) == ("flapping", 1)
    assert (plan.advance(6.0, users_done=True), plan.flap_round) == ("settle", 1)
    assert (plan.advance(10.9, users_done=False), plan.flap_round) == ("settle", 1)
    assert (plan.advance(11.0, users_done=False), plan.flap_round) == ("flapping", 2)
    assert (plan.advance(15.0, users_done=True), plan.flap_round) == ("settle", 2)
    assert plan.advance(20.0, users_done=False) == PHASE_DONE
    assert not plan.flapping_cut_short


def test_run_time_is_shared_by_the_rounds_settles_included() -> None:
    """With -t, each round flaps for an equal share of the time its settles leave."""
    plan = PhasePlan(baseline_s=1, settle_s=2, run_time_s=15, rounds=2)
    assert plan.advance(1.0, users_done=False) == "flapping"
    # (15 s - 1 s - 2 settles of 2 s) / 2 rounds: round 1 flaps until 6 s.
    assert plan.advance(5.9, users_done=False) == "flapping"
    assert plan.advance(6.0, users_done=False) == "settle"
    assert (plan.advance(8.0, users_done=False), plan.flap_round) == ("flapping", 2)
    # The rest, less the last settle: round 2 flaps until 13 s.
    assert plan.advance(12.9, users_done=False) == "flapping"
    assert plan.advance(13.0, users_done=False) == "settle"
    assert plan.advance(15.0, users_done=False) == PHASE_DONE
    assert plan.flapping_cut_short


def test_a_run_time_too_short_for_every_round_runs_the_rounds_that_fit() -> None:
    """-t at the least run time of one round runs one round, with its flapping and settle intact."""
    plan = PhasePlan(baseline_s=2, settle_s=5, rounds=2)
    least_s = plan.least_run_time_s()
    plan.run_time_s = least_s
    assert plan.rounds_fitting() == 1
    assert plan.advance(2.0, users_done=False) == "flapping"
    assert plan.advance(2.9, users_done=False) == "flapping"  # at least a second of flapping
    assert plan.advance(3.0, users_done=False) == "settle"
    assert plan.advance(least_s, users_done=False) == PHASE_DONE
    assert plan.flap_round == 1
