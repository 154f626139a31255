"""The rounds rule: a high-water mark (reached in round 1, flat after) passes, growth that round 2 adds fails.

Scripted timelines, no server: each test asserts the sentence the user reads.
"""

from __future__ import annotations

from typing import Any

from monitors.checks import ClientTotals, Thresholds, evaluate
from monitors.rounds import round_growth
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample
from monitors.timeline import Timeline

MIB = 1024 * 1024
KIB = 1024
BASELINE_MB = 40


def rounds_run(
    high_water_mb: float = 0.0,
    leak_kb_per_cycle: float = 0.0,
    cycles_per_round: int = 200,
    rounds: int = 2,
    fds_high_water: int = 0,
    fds_per_cycle: float = 0.0,
    settle_rounds: int | None = None,
) -> Timeline:
    """Baseline, then `rounds` rounds of flapping and settle; round 1 raises memory by `high_water_mb` once.

    Memory during flapping also holds 20 MB for the open connections; `settle_rounds` (default: all)
    is how many rounds got their settle phase.
    """
    settle_rounds = rounds if settle_rounds is None else settle_rounds
    t = 0.0
    samples: list[ResourceSample] = []

    def add(phase: str, flap_round: int, cycles: int, rss_mb: float, fds: float) -> None:
        nonlocal t
        samples.append(
            ResourceSample(
                t_s=t,
                phase=phase,
                flap_round=flap_round,
                cycles_completed=cycles,
                rss_bytes=int(rss_mb * MIB),
                open_fds=int(fds),
                agents=0,
                pid=4242,
            )
        )
        t += 0.5

    for _ in range(4):
        add(PHASE_BASELINE, 0, 0, BASELINE_MB, 10)
    for flap_round in range(1, rounds + 1):
        start = (flap_round - 1) * cycles_per_round
        for step in range(10):
            cycles = start + cycles_per_round * step // 10
            leaked_mb = leak_kb_per_cycle * cycles / 1024
            add(PHASE_FLAPPING, flap_round, cycles, BASELINE_MB + high_water_mb + 20 + leaked_mb, 110)
        if flap_round > settle_rounds:
            break
        cycles = flap_round * cycles_per_round
        rss_mb = BASELINE_MB + high_water_mb + leak_kb_per_cycle * cycles / 1024
        fds = 10 + fds_high_water + fds_per_cycle * cycles
        for _ in range(6):
            add(PHASE_SETTLE, flap_round, cycles, rss_mb, fds)
    return Timeline(samples)


def judged(timeline: Timeline, interrupted: bool = False, **limits: Any) -> dict[str, Any]:
    """The verdict of the rounds rule on `timeline`, by check name."""
    cycles = max(s.cycles_completed for s in timeline)
    totals = ClientTotals(connect_attempts=cycles, connect_failures=0, cycles_completed=cycles, users=10)
    verdict = evaluate(timeline, totals, Thresholds(**limits), interrupted=interrupted, rounds=2)
    return {c.name: c for c in verdict.checks}


def test_a_high_water_mark_reached_in_round_one_passes() -> None:
    """37 MB kept after round 1 and nothing more after round 2 is a high-water mark: memory passes."""
    checks = judged(rounds_run(high_water_mb=37))
    memory = checks["memory_growth_mb"]
    assert memory.status == "pass"
    assert memory.observed == 0
    assert memory.detail == (
        "memory grew 37 MB in round 1 (high-water: no further growth in round 2; limit 15 MB more):"
        " 40 MB → 77 MB → 77 MB; baseline to settled +37 MB, 94.7 KB per cycle"
    )
    leak = checks["leak_kb_per_cycle"]
    assert leak.status == "pass"
    assert leak.detail == (
        "memory grew 0 KB per cycle in round 2 (0 MB over 200 cycles; limit 16 KB), settled after round 1 to the end"
    )


def test_the_same_high_water_mark_fails_the_one_round_rule() -> None:
    """The absolute rule (one round, baseline to settled) fails the same server: why the rounds exist."""
    timeline = rounds_run(high_water_mb=37)
    cycles = max(s.cycles_completed for s in timeline)
    totals = ClientTotals(connect_attempts=cycles, connect_failures=0, cycles_completed=cycles, users=10)
    memory = next(c for c in evaluate(timeline, totals, Thresholds(), rounds=1).checks if c.name == "memory_growth_mb")
    assert memory.status == "fail"
    assert memory.detail == "memory grew 37 MB over baseline (limit 15 MB): 40 MB → 77 MB"


def test_a_leak_of_128_kb_per_cycle_fails_with_what_round_two_added() -> None:
    """128 KB per cycle: round 2 adds 25 MB on top of round 1; both memory checks fail and say leak."""
    checks = judged(rounds_run(leak_kb_per_cycle=128))
    memory = checks["memory_growth_mb"]
    assert memory.status == "fail"
    assert memory.detail == (
        "memory grew 25 MB more in round 2 (leak: 128 KB per cycle; limit 15 MB more):"
        " 40 MB → 65 MB → 90 MB; baseline to settled +50 MB, 128 KB per cycle"
    )
    leak = checks["leak_kb_per_cycle"]
    assert leak.status == "fail"
    assert leak.observed == 128
    assert leak.detail == (
        "memory grew 128 KB per cycle in round 2 (leak: 25 MB over 200 cycles; limit 16 KB),"
        " settled after round 1 to the end"
    )


def test_a_leak_of_64_kb_per_cycle_under_the_mb_limit_fails_per_cycle() -> None:
    """64 KB x 200 cycles is 12.5 MB, under 15 MB: memory_growth_mb passes but leak_kb_per_cycle fails."""
    checks = judged(rounds_run(leak_kb_per_cycle=64))
    assert checks["memory_growth_mb"].status == "pass"
    # Not called a high-water mark: the per-cycle limit is over.
    assert checks["memory_growth_mb"].detail.startswith(
        "memory grew 12.5 MB in round 1 and 12.5 MB more in round 2 (64 KB per cycle; limit 15 MB more)"
    )
    assert checks["leak_kb_per_cycle"].status == "fail"
    assert checks["leak_kb_per_cycle"].observed == 64


def test_a_leak_on_top_of_a_high_water_mark_is_still_caught() -> None:
    """A 30 MB high-water mark does not hide a 64 KB per cycle leak."""
    checks = judged(rounds_run(high_water_mb=30, leak_kb_per_cycle=64))
    assert checks["leak_kb_per_cycle"].status == "fail"
    assert checks["leak_kb_per_cycle"].observed == 64


def test_growth_under_the_allocator_noise_never_fails_short_rounds() -> None:
    """20 cycles per round and 0.5 MB more in round 2 (26 KB per cycle) is noise: the limit widens to 1 MB."""
    checks = judged(rounds_run(high_water_mb=3, leak_kb_per_cycle=25.6, cycles_per_round=20))
    leak = checks["leak_kb_per_cycle"]
    assert leak.status == "pass"
    assert leak.limit == 51.2
    assert leak.detail == (
        "memory grew 25.6 KB per cycle in round 2 (0.5 MB over 20 cycles;"
        " limit 51.2 KB: 1 MB of allocator noise over 20 cycles), settled after round 1 to the end"
    )
    assert checks["memory_growth_mb"].detail.startswith(
        "memory grew 3.5 MB in round 1 (high-water: round 2 added only 0.5 MB, 25.6 KB per cycle; limit 15 MB more)"
    )


def test_a_little_growth_within_both_limits_is_still_a_high_water_mark() -> None:
    """A pool that grew a little further in round 2 (a higher peak), within both limits, reads as high-water."""
    memory = judged(rounds_run(high_water_mb=50, leak_kb_per_cycle=6, cycles_per_round=600))["memory_growth_mb"]
    assert memory.status == "pass"
    assert memory.detail == (
        "memory grew 53.5 MB in round 1 (high-water: round 2 added only 3.5 MB, 6 KB per cycle; limit 15 MB more):"
        " 40 MB → 93.5 MB → 97 MB; baseline to settled +57 MB, 48.7 KB per cycle"
    )


def test_fds_kept_once_pass_and_fds_leaked_per_cycle_fail() -> None:
    """A pool of 12 fds kept after round 1 passes fd_growth; one fd per cycle fails it in round 2."""
    pool = judged(rounds_run(fds_high_water=12))["fd_growth"]
    assert pool.status == "pass"
    assert pool.detail == (
        "open file descriptors grew by 12 in round 1 (high-water: no further growth in round 2; limit 10 more):"
        " 10 → 22 → 22"
    )
    leak = judged(rounds_run(fds_per_cycle=1))["fd_growth"]
    assert leak.status == "fail"
    assert leak.observed == 200
    assert leak.detail == (
        "open file descriptors grew by 200 more in round 2 (leak: 1 per cycle; limit 10 more): 10 → 210 → 410"
    )


def test_three_rounds_judge_what_rounds_two_and_three_added() -> None:
    """With three rounds the leak is what rounds 2-3 added after round 1, per cycle of those rounds."""
    checks = judged(rounds_run(leak_kb_per_cycle=32, rounds=3))
    assert checks["leak_kb_per_cycle"].observed == 32
    assert checks["leak_kb_per_cycle"].detail.startswith("memory grew 32 KB per cycle in rounds 2-3 (leak: 12.5 MB")


def test_a_run_interrupted_before_round_two_settled_is_judged_on_one_round_and_says_so() -> None:
    """Interrupted in round 2: the checks judge baseline to round 1's settle (one round) and say why."""
    checks = judged(rounds_run(high_water_mb=37, settle_rounds=1), interrupted=True)
    memory = checks["memory_growth_mb"]
    assert memory.status == "fail"
    assert memory.detail == (
        "memory grew 37 MB over baseline (limit 15 MB): 40 MB → 77 MB;"
        " the run was interrupted before round 2 settled, so judged from baseline to settled (one round)"
    )
    assert checks["leak_kb_per_cycle"].detail.endswith(
        "; the run was interrupted before round 2 settled, so judged by the trend during flapping (one round)"
    )


def test_round_growth_reads_each_rounds_settle_and_cycles() -> None:
    """round_growth takes the baseline, round 1's and the last round's settled levels and counts cycles per round."""
    growth = round_growth(rounds_run(high_water_mb=10, leak_kb_per_cycle=16, cycles_per_round=100), "rss_bytes")
    assert growth is not None
    assert (growth.first_cycles, growth.later_cycles) == (100, 100)
    assert growth.first_growth == (10 + 16 * 100 / 1024) * MIB
    assert growth.later_growth == 16 * 100 * KIB
    assert round_growth(rounds_run(settle_rounds=1), "rss_bytes") is None
