"""When a settle ends: scripted samples every 0.5 s, decisions asked at each one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from monitors.sample import PHASE_SETTLE, ResourceSample
from monitors.settle import SettleDecision, SettleWatch, still_falling_words
from monitors.timeline import ResourceLevels

MIB = 1024 * 1024
STEP_S = 0.5  # the monitor's sampling interval in these scripts
START_S = 100.0  # the settle begins here (monotonic seconds)
BASELINE = ResourceLevels(source="baseline", sample_count=10, rss_bytes=50 * MIB, open_fds=12, agents=0)


def run(
    watch: SettleWatch,
    script: Callable[[float], dict[str, Any]],
    until_s: float = 200.0,
) -> SettleDecision:
    """Feed a sample every STEP_S from the settle's start (fields from `script(elapsed)`) until the watch is done."""
    watch.start(START_S, BASELINE)
    elapsed = 0.0
    while elapsed <= until_s:
        watch.add(ResourceSample(START_S + elapsed, phase=PHASE_SETTLE, **script(elapsed)))
        decision = watch.decision(START_S + elapsed)
        if decision.done:
            return decision
        elapsed += STEP_S
    raise AssertionError("the settle never ended")


def healthy(elapsed: float) -> dict[str, Any]:
    """Everything back at the baseline from the first sample."""
    return {"rss_bytes": 50 * MIB, "open_fds": 12, "agents": 0}


def test_flat_series_end_the_settle_at_its_minimum() -> None:
    """When nothing moves, the settle lasts exactly --settle-s and says so."""
    decision = run(SettleWatch(min_s=5, max_s=60), healthy)
    assert decision.elapsed_s == 5.0
    assert not decision.capped
    assert decision.reason == "settled after 5 s: --settle-s 5 s passed and nothing was still falling"


def test_a_falling_series_extends_the_settle_until_it_is_flat() -> None:
    """open fds falling 1 every 0.5 s keep the settle going past --settle-s until back at their baseline."""

    def script(elapsed: float) -> dict[str, Any]:
        return {"rss_bytes": 50 * MIB, "open_fds": 12 + max(0, 16 - int(elapsed * 2)), "agents": 0}

    # 7.5 s: 13 fds, within the one fd of noise of the baseline's 12.
    decision = run(SettleWatch(min_s=5, max_s=60), script)
    assert decision.elapsed_s == 7.5
    assert decision.reason == "settled after 7.5 s: open fds back at baseline (12)"


def test_a_series_that_stops_falling_above_its_baseline_ends_after_its_flat_window() -> None:
    """Agents falling to 3 by 6 s (a leak of 3) end the settle once flat for 2 s: waiting cannot help."""

    def script(elapsed: float) -> dict[str, Any]:
        return {"rss_bytes": 50 * MIB, "open_fds": 12, "agents": 3 + max(0, 12 - int(elapsed * 2))}

    decision = run(SettleWatch(min_s=5, max_s=60), script)
    assert decision.elapsed_s == 8.0  # flat from 6 s, for 2 s
    assert decision.reason == "settled after 8 s: agents flat for 2 s"
    assert decision.still_falling == {}


def test_a_leak_flat_above_its_baseline_does_not_hold_the_settle() -> None:
    """Agents stuck at 40 from the start: the settle ends at --settle-s, the check judges the leak."""
    decision = run(SettleWatch(min_s=5, max_s=60), lambda e: {**healthy(e), "agents": 40})
    assert decision.elapsed_s == 5.0
    assert not decision.capped


def test_a_cached_gauge_stepping_every_5_s_is_waited_for_over_two_refreshes() -> None:
    """A 5 s gauge stepping 30 → 20 → 10 and staying (a leak of 10) ends the settle 10 s after its last step."""

    def script(elapsed: float) -> dict[str, Any]:
        # 0-4.5 s: 30 (cached from flapping); 5 s: 20; 10 s: 10; then 10 for good.
        return {**healthy(elapsed), "agents": 30 - 10 * min(2, int(elapsed // 5))}

    watch = SettleWatch(min_s=5, max_s=60, refresh_s={"agents": 5.0})
    decision = run(watch, script)
    assert decision.elapsed_s == 20.0
    assert decision.reason == "settled after 20 s: agents flat for 2 refreshes (10 s)"


def test_without_its_refresh_interval_a_cached_gauge_would_end_the_settle_between_steps() -> None:
    """The same gauge judged with the 2 s minimum window ends while it is still stepping down."""

    def script(elapsed: float) -> dict[str, Any]:
        return {**healthy(elapsed), "agents": 30 - 10 * min(2, int(elapsed // 5))}

    decision = run(SettleWatch(min_s=5, max_s=60), script)
    assert decision.elapsed_s < 10.0


def test_a_cached_gauge_reaching_its_baseline_ends_the_wait_at_once() -> None:
    """A 5 s gauge that drops from 30 to 0 (the baseline) at 7 s ends the settle at 7 s, not 17 s."""

    def script(elapsed: float) -> dict[str, Any]:
        return {**healthy(elapsed), "agents": 30 if elapsed < 7 else 0}

    decision = run(SettleWatch(min_s=5, max_s=60, refresh_s={"agents": 5.0}), script)
    assert decision.elapsed_s == 7.0
    assert decision.reason == "settled after 7 s: agents back at baseline (0)"


def test_memory_wobbling_under_the_allocator_noise_is_flat() -> None:
    """Memory going up and down by 0.8 MB above its baseline is flat: the settle ends at --settle-s."""

    def script(elapsed: float) -> dict[str, Any]:
        wobble = int(0.8 * MIB) if int(elapsed * 2) % 2 else 0
        return {**healthy(elapsed), "rss_bytes": 80 * MIB + wobble}

    decision = run(SettleWatch(min_s=5, max_s=60), script)
    assert decision.elapsed_s == 5.0


def test_memory_falling_more_than_the_noise_is_waited_for() -> None:
    """Memory falling 1 MB per second from 90 MB to 70 MB (above its 50 MB baseline) is waited for."""

    def script(elapsed: float) -> dict[str, Any]:
        return {**healthy(elapsed), "rss_bytes": int((90 - min(20.0, elapsed)) * MIB)}

    decision = run(SettleWatch(min_s=5, max_s=60), script)
    assert decision.elapsed_s >= 20.0
    assert decision.reason.endswith("memory flat for 2 s")


def test_the_cap_names_the_series_still_falling() -> None:
    """Agents falling 184 → 12 by the cap end the settle there, named with both levels."""

    def script(elapsed: float) -> dict[str, Any]:
        return {**healthy(elapsed), "agents": 184 - int(elapsed * 172 / 60)}

    decision = run(SettleWatch(min_s=5, max_s=60), script)
    assert decision.capped
    assert decision.elapsed_s == 60.0
    assert decision.still_falling == {"agents": (184.0, 12.0)}
    assert decision.reason == "stopped at --settle-max-s 60 s: agents still falling (184 → 12)"
    outcome = decision.outcome(flap_round=2, max_s=60)
    assert outcome.still_falling_words("agents") == "agents still falling at --settle-max-s 60 s: 184 → 12"
    assert outcome.still_falling_words("open_fds") is None


def test_memory_still_falling_is_said_in_mb() -> None:
    """The still-falling words print memory in MB."""
    assert still_falling_words("rss_bytes", (300 * MIB, 120.5 * MIB), 30) == (
        "memory still falling at --settle-max-s 30 s: 300 MB → 120.5 MB"
    )


def test_while_waiting_the_decision_says_what_for() -> None:
    """Before the cached gauge was flat for two refreshes, the decision names it and is not done."""
    watch = SettleWatch(min_s=5, max_s=60, refresh_s={"agents": 5.0})
    watch.start(START_S, BASELINE)
    for i in range(13):
        watch.add(ResourceSample(START_S + i * STEP_S, **{**healthy(0), "agents": 7}))
    decision = watch.decision(START_S + 6.0)
    assert not decision.done
    assert decision.waiting_for == ("agents",)
    assert decision.reason == "waiting: agents not yet flat for 2 refreshes (10 s)"


def test_no_samples_end_the_settle_at_its_minimum() -> None:
    """Without any sample (no monitor) the settle is --settle-s long."""
    watch = SettleWatch(min_s=5, max_s=60)
    watch.start(START_S)
    assert not watch.decision(START_S + 4.9).done
    decision = watch.decision(START_S + 5.0)
    assert decision.done and decision.reason == "settled after 5 s: no server samples to wait for"


def test_samples_before_the_start_are_ignored() -> None:
    """What the server held during flapping does not count as the settle's first level."""
    watch = SettleWatch(min_s=0, max_s=60)
    watch.start(START_S, BASELINE)
    watch.add(ResourceSample(START_S - 1, agents=500))
    watch.add(ResourceSample(START_S, agents=0))
    assert not watch.decision(START_S).done  # 500 → 0 would have counted as "came down"
    watch.add(ResourceSample(START_S + 2, agents=0))
    assert watch.decision(START_S + 2).done


def test_a_gauge_at_its_baseline_from_the_start_must_stay_there_for_its_window() -> None:
    """A cached gauge that reads the baseline as the settle begins may still catch up: 0 → 8."""
    watch = SettleWatch(min_s=0, max_s=60)
    watch.start(START_S, BASELINE)
    watch.add(ResourceSample(START_S, agents=0))
    watch.add(ResourceSample(START_S + 1, agents=0))
    assert not watch.decision(START_S + 1).done
    watch.add(ResourceSample(START_S + 1.5, agents=8))
    watch.add(ResourceSample(START_S + 2.5, agents=8))
    decision = watch.decision(START_S + 2.5)
    assert not decision.done and "agents still changing (0 → 8)" in decision.reason
    assert decision.still_falling == {}


@pytest.mark.parametrize("refresh_s, window_s", [(None, 2.0), (0.5, 2.0), (5.0, 10.0)])
def test_the_flat_window_is_two_refreshes_and_at_least_2_s(refresh_s: float | None, window_s: float) -> None:
    """A series' window is the larger of 2 s and two refreshes of its source."""
    watch = SettleWatch(min_s=5, max_s=60, refresh_s={} if refresh_s is None else {"agents": refresh_s})
    assert watch.window_s("agents") == window_s
