"""Tests of the verdict checks: each asserts the exact sentence the user reads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from monitors.checks import (
    EXIT_FAIL,
    EXIT_PASS,
    OFF,
    CheckResult,
    ClientTotals,
    Thresholds,
    Verdict,
    agents_growth,
    connect_success_pct,
    evaluate,
    fd_growth,
    fmt_number,
    judged_settle,
    leak_kb_per_cycle,
    lingering_connections,
    memory_growth_mb,
    memory_growth_pct,
    messages_duplicated,
    messages_lost,
    recovery_ms,
    server_alive,
    session_success_pct,
    settle_line,
    threshold_info,
)
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample
from monitors.settle import SettleOutcome
from monitors.timeline import ResourceLevels, Timeline
from scenarios.continuity import ContinuityCounts

MIB = 1024 * 1024
KIB = 1024


def sample(t_s: float, phase: str = PHASE_BASELINE, **fields: Any) -> ResourceSample:
    """A sample at `t_s` in `phase` with the given measured fields."""
    return ResourceSample(t_s=t_s, phase=phase, **fields)


def levels(source: str = "baseline", **values: Any) -> ResourceLevels:
    """Resource levels of one phase."""
    return ResourceLevels(source=source, sample_count=3, **values)


def totals(attempts: int = 200, failures: int = 0, **fields: Any) -> ClientTotals:
    """Client totals of a run of 10 users."""
    fields.setdefault("sessions_succeeded", attempts - failures)
    return ClientTotals(
        connect_attempts=attempts,
        connect_failures=failures,
        cycles_completed=attempts - failures,
        users=10,
        **fields,
    )


def scripted_run(leak_kb_per_cycle: float = 0.0, lingering: int = 0, pid: int = 4242) -> Timeline:
    """Baseline, 200 flapping samples over 1000 cycles, and a settle phase."""
    held = {"LISTEN": 1}
    samples = [
        sample(float(t), rss_bytes=60 * MIB, open_fds=20, threads=4, agents=0, tcp_states=held, pid=pid)
        for t in range(5)
    ]
    for i, cycles in enumerate(range(0, 1000, 5)):
        samples.append(
            sample(
                5.0 + i * 0.5,
                PHASE_FLAPPING,
                pid=pid,
                cycles_completed=cycles,
                rss_bytes=60 * MIB + int(leak_kb_per_cycle * KIB * cycles),
                open_fds=120,
                threads=4,
                agents=100,
                tcp_states={"LISTEN": 1, "ESTABLISHED": 100},
            )
        )
    end_rss = 60 * MIB + int(leak_kb_per_cycle * KIB * 1000)
    for t in range(5):
        samples.append(
            sample(
                110.0 + t,
                PHASE_SETTLE,
                pid=pid,
                cycles_completed=1000,
                rss_bytes=end_rss,
                open_fds=20 + lingering,
                threads=4,
                agents=lingering,
                tcp_states={"LISTEN": 1, "CLOSE_WAIT": lingering} if lingering else held,
            )
        )
    return Timeline(samples)


class TestFormatting:
    def test_fmt_number(self) -> None:
        """Numbers print with one decimal at most and no trailing zeros."""
        assert fmt_number(15.0) == "15"
        assert fmt_number(23.44) == "23.4"
        assert fmt_number(-0.01) == "0"
        assert fmt_number(0.125, 3) == "0.125"


class TestThresholds:
    def test_defaults(self) -> None:
        """The defaults are the documented ones."""
        assert Thresholds() == Thresholds(
            min_connect_success_pct=100.0,
            max_memory_growth_mb=15.0,
            max_memory_growth_pct=0.0,
            max_leak_kb_per_cycle=16.0,
            max_fd_growth=10,
            max_lingering_connections=0,
            max_agents_growth=0,
            max_recovery_ms=100.0,
        )

    def test_info_carries_unit_help_and_type(self) -> None:
        """Each threshold exposes its default, type, unit and help for the options layer."""
        info = {i.name: i for i in threshold_info()}
        assert list(info) == [f.name for f in dataclasses.fields(Thresholds)]
        assert info["max_memory_growth_mb"].unit == "MB"
        assert info["max_memory_growth_mb"].default == 15.0
        assert info["max_fd_growth"].value_type is int
        assert info["max_leak_kb_per_cycle"].value_type is float
        assert all(i.help and i.unit for i in info.values())

    def test_negative_limit_refused(self) -> None:
        """A negative limit fails when the thresholds are built, naming the field."""
        with pytest.raises(ValueError, match=r"max_fd_growth must be a number >= 0, got -1"):
            Thresholds(max_fd_growth=-1)

    def test_success_above_100_refused(self) -> None:
        """A connect success minimum above 100% is refused."""
        with pytest.raises(ValueError, match="min_connect_success_pct must be <= 100"):
            Thresholds(min_connect_success_pct=101)


class TestServerAlive:
    def test_pass(self) -> None:
        """A server seen alive in every sample passes."""
        result = server_alive(Timeline([sample(0.0, pid=123), sample(1.0, pid=123)]))
        assert result.status == "pass"
        assert result.detail == "server alive throughout (pid 123, 2 samples)"

    def test_process_exited(self) -> None:
        """A dead sample fails, saying when and in which phase, from the first sample."""
        timeline = Timeline([sample(100.0, pid=123), sample(112.3, PHASE_FLAPPING, alive=False)])
        result = server_alive(timeline)
        assert result.status == "fail"
        assert result.detail == "server process exited during flapping (t=12.3 s)"

    def test_metrics_endpoint_gone(self) -> None:
        """Without a pid, alive=False means the metrics endpoint stopped answering; still a fail."""
        timeline = Timeline([sample(0.0, agents=0), sample(2.0, PHASE_SETTLE, alive=False)])
        result = server_alive(timeline)
        assert result.passed is False
        assert result.detail == "server stopped answering its metrics endpoint during settle (t=2 s)"

    def test_restarted(self) -> None:
        """A pid change fails as a restart."""
        timeline = Timeline([sample(0.0, pid=123), sample(1.0, PHASE_FLAPPING, pid=456)])
        assert server_alive(timeline).detail == "server restarted: pid changed 123 → 456"

    def test_exited_and_restarted(self) -> None:
        """A death followed by a restart reports both."""
        timeline = Timeline([sample(0.0, pid=1), sample(4.0, PHASE_FLAPPING, alive=False), sample(5.0, pid=2)])
        assert server_alive(timeline).detail == (
            "server process exited during flapping (t=4 s); server restarted: pid changed 1 → 2"
        )

    def test_skip(self) -> None:
        """Samples that observed nothing skip the check."""
        result = server_alive(Timeline([sample(0.0), sample(1.0, PHASE_FLAPPING)]))
        assert result.status == "skip"
        assert result.passed is None
        assert result.detail == "skipped: no server samples (no process or metrics monitor)"


class TestSessionSuccess:
    def test_pass(self) -> None:
        """Every established session running its whole conversation passes the default 100% minimum."""
        result = session_success_pct(totals(200), 100.0)
        assert result.status == "pass"
        assert result.detail == "100% of 200 sessions ran every step and disconnected without a failure (limit ≥ 100%)"

    def test_fail(self) -> None:
        """Sessions the server closed or garbled fail it, with the share in the sentence."""
        result = session_success_pct(totals(200, sessions_succeeded=150, sessions_failed=50), 100.0)
        assert result.status == "fail"
        assert result.observed == pytest.approx(75.0)
        assert result.detail == "75% of 200 sessions ran every step and disconnected without a failure (limit ≥ 100%)"

    def test_skipped_without_sessions(self) -> None:
        """No established session: nothing to judge, said so."""
        result = session_success_pct(totals(200, 200, sessions_succeeded=0), 100.0)
        assert result.status == "skip"
        assert result.detail == "skipped: no session was established"


class TestConnectSuccess:
    def test_pass(self) -> None:
        """All connects succeeding passes the default 100% minimum."""
        result = connect_success_pct(totals(200), 100.0)
        assert result == CheckResult(
            "connect_success_pct",
            "pass",
            100.0,
            100.0,
            "%",
            "100% of 200 connects succeeded (limit ≥ 100%)",
            "min",
        )

    def test_fail(self) -> None:
        """Three failures in 200 fail the 100% minimum."""
        result = connect_success_pct(totals(200, 3), 100.0)
        assert result.status == "fail"
        assert result.observed == pytest.approx(98.5)
        assert result.detail == "98.5% of 200 connects succeeded (limit ≥ 100%)"

    def test_near_miss_is_not_printed_as_the_limit(self) -> None:
        """One failure in 20000 prints enough decimals not to read as 100%."""
        result = connect_success_pct(totals(20000, 1), 100.0)
        assert result.detail == "99.995% of 20000 connects succeeded (limit ≥ 100%)"

    def test_generator_limited(self) -> None:
        """When the load generator caused the failures, the sentence says so."""
        result = connect_success_pct(totals(200, 3, generator_limited="local ports exhausted (EADDRNOTAVAIL)"), 100.0)
        assert result.detail == (
            "98.5% of 200 connects succeeded (limit ≥ 100%); the failures came from the"
            " load generator itself: local ports exhausted (EADDRNOTAVAIL)"
        )

    def test_no_attempts_fails(self) -> None:
        """A run that attempted no connect fails rather than skipping."""
        result = connect_success_pct(totals(0), 100.0)
        assert result.status == "fail"
        assert result.detail == "no connect was attempted"


class TestMemoryGrowthMb:
    def test_fail(self) -> None:
        """23.4 MB of growth fails the 15 MB limit."""
        result = memory_growth_mb(levels(rss_bytes=61.7 * MIB), levels("settle", rss_bytes=85.1 * MIB), 15.0)
        assert result.status == "fail"
        assert result.observed == pytest.approx(23.4)
        assert result.detail == ("memory grew 23.4 MB over baseline (limit 15 MB): 61.7 MB → 85.1 MB")

    def test_pass(self) -> None:
        """2 MB of growth passes."""
        result = memory_growth_mb(levels(rss_bytes=60 * MIB), levels("settle", rss_bytes=62 * MIB), 15.0)
        assert result.status == "pass"
        assert result.detail == "memory grew 2 MB over baseline (limit 15 MB): 60 MB → 62 MB"

    def test_shrank(self) -> None:
        """Memory below baseline passes and says it fell."""
        result = memory_growth_mb(levels(rss_bytes=60 * MIB), levels("settle", rss_bytes=58.5 * MIB), 15.0)
        assert result.status == "pass"
        assert result.detail == "memory fell 1.5 MB below baseline (limit 15 MB): 60 MB → 58.5 MB"

    def test_no_settle_phase(self) -> None:
        """Levels taken from flapping say there was no settle phase."""
        result = memory_growth_mb(levels(rss_bytes=60 * MIB), levels("flapping", rss_bytes=62 * MIB), 15.0)
        assert result.detail == (
            "memory grew 2 MB over baseline (limit 15 MB): 60 MB → 62 MB;"
            " no settle phase, so measured at the end of flapping"
        )

    @pytest.mark.parametrize(
        ("baseline", "settled", "reason"),
        [
            (None, None, "skipped: no memory samples (no process or metrics monitor)"),
            (None, MIB, "skipped: no memory samples in the baseline phase"),
            (MIB, None, "skipped: no memory samples after flapping"),
        ],
    )
    def test_skip(self, baseline: int | None, settled: int | None, reason: str) -> None:
        """Missing memory data skips with the reason."""
        result = memory_growth_mb(levels(rss_bytes=baseline), levels("settle", rss_bytes=settled), 15.0)
        assert result.status == "skip"
        assert result.detail == reason


class TestMemoryGrowthPct:
    def test_off_by_default(self) -> None:
        """A 0 limit turns the check off."""
        result = memory_growth_pct(levels(rss_bytes=MIB), levels("settle", rss_bytes=MIB), 0.0)
        assert result.status == "skip"
        assert result.detail == "skipped: off (max_memory_growth_pct is 0)"

    def test_fail(self) -> None:
        """25% growth fails a 20% limit."""
        result = memory_growth_pct(levels(rss_bytes=60 * MIB), levels("settle", rss_bytes=75 * MIB), 20.0)
        assert result.status == "fail"
        assert result.detail == "memory grew 25% over baseline (limit 20%): 60 MB → 75 MB"

    def test_pass(self) -> None:
        """10% growth passes a 20% limit."""
        result = memory_growth_pct(levels(rss_bytes=60 * MIB), levels("settle", rss_bytes=66 * MIB), 20.0)
        assert result.status == "pass"
        assert result.observed == pytest.approx(10.0)

    def test_skip_without_data(self) -> None:
        """No memory data skips even when the check is on."""
        result = memory_growth_pct(levels(), levels("settle"), 20.0)
        assert result.detail == "skipped: no memory samples (no process or metrics monitor)"


class TestLeak:
    def test_fail(self) -> None:
        """A steady 64 KiB per cycle fails the 16 KiB limit."""
        result = leak_kb_per_cycle(scripted_run(leak_kb_per_cycle=64.0).samples, 16.0)
        assert result.status == "fail"
        assert result.observed == pytest.approx(64.0, rel=0.01)
        assert result.detail == (
            "memory grew 64 KB per flap cycle (limit 16 KB): sustained trend over 150 samples, cycles 250 → 995"
        )

    def test_pass(self) -> None:
        """Flat memory passes."""
        result = leak_kb_per_cycle(scripted_run().samples, 16.0)
        assert result.status == "pass"
        assert result.detail == (
            "memory grew 0 KB per flap cycle (limit 16 KB): sustained trend over 150 samples, cycles 250 → 995"
        )

    def test_skip(self) -> None:
        """Too few flapping samples skip with the estimator's reason."""
        samples = [sample(float(c), PHASE_FLAPPING, cycles_completed=c, rss_bytes=MIB) for c in (0, 100, 200, 300, 400)]
        result = leak_kb_per_cycle(samples, 16.0)
        assert result.status == "skip"
        assert result.detail == ("skipped: only 4 memory samples during flapping after warm-up (need 6)")


class TestFdGrowth:
    def test_fail(self) -> None:
        """12 more descriptors fail a limit of 10."""
        result = fd_growth(levels(open_fds=24), levels("settle", open_fds=36), 10)
        assert result.status == "fail"
        assert result.detail == "open file descriptors grew by 12 over baseline (limit 10): 24 → 36"

    def test_pass(self) -> None:
        """Descriptors back at baseline pass."""
        result = fd_growth(levels(open_fds=24.5), levels("settle", open_fds=24), 10)
        assert result.status == "pass"
        assert result.detail == ("open file descriptors fell by 0.5 below baseline (limit 10): 24.5 → 24")

    def test_skip(self) -> None:
        """No descriptor data skips."""
        result = fd_growth(levels(), levels("settle"), 10)
        assert result.detail == "skipped: no file descriptor samples (no process monitor)"


class TestLingeringConnections:
    def test_fail(self) -> None:
        """Connections still held after settling fail, naming their states."""
        result = lingering_connections(
            levels(held_connections=0),
            levels("settle", held_connections=3, held_tcp_states={"CLOSE_WAIT": 3}),
            0,
        )
        assert result.status == "fail"
        assert result.detail == (
            "3 TCP connections lingering after settling (limit 0): held 0 at baseline → 3 at the end (CLOSE_WAIT=3)"
        )

    def test_single_without_settle_phase(self) -> None:
        """One connection held at the end of flapping reads in the singular, without settle."""
        result = lingering_connections(levels(held_connections=0), levels("flapping", held_connections=1), 0)
        assert result.detail == (
            "1 TCP connection lingering after flapping (no settle phase) (limit 0): held 0 at baseline → 1 at the end"
        )

    def test_pass(self) -> None:
        """Only the connections already held at baseline pass."""
        result = lingering_connections(levels(held_connections=1), levels("settle", held_connections=1), 0)
        assert result.status == "pass"
        assert result.detail == (
            "no TCP connections lingering after settling (limit 0): held 1 at baseline → 1 at the end"
        )

    def test_skip(self) -> None:
        """No TCP data skips."""
        result = lingering_connections(levels(), levels("settle"), 0)
        assert result.detail == "skipped: no TCP connection samples (no process monitor)"


class TestAgentsGrowth:
    def test_fail(self) -> None:
        """Agents left over after settling fail a limit of 0."""
        result = agents_growth(levels(agents=0), levels("settle", agents=5), 0)
        assert result.status == "fail"
        assert result.detail == "server agents grew by 5 over baseline (limit 0): 0 → 5"

    def test_pass(self) -> None:
        """Agents back at baseline pass."""
        result = agents_growth(levels(agents=0), levels("settle", agents=0), 0)
        assert result.status == "pass"
        assert result.detail == "server agents grew by 0 over baseline (limit 0): 0 → 0"

    def test_skip(self) -> None:
        """No agents metric skips."""
        result = agents_growth(levels(), levels("settle"), 0)
        assert result.detail == "skipped: no agents metric (no metrics monitor)"

    def test_skip_partial(self) -> None:
        """An agents metric that vanished after flapping skips with that reason."""
        result = agents_growth(levels(agents=0), levels("settle"), 0)
        assert result.detail == "skipped: no agents metric samples after flapping"


class TestRecovery:
    def test_fail(self) -> None:
        """A 250 ms recovery fails a 100 ms limit."""
        result = recovery_ms(totals(recovery_ms=250.0), 100.0)
        assert result.status == "fail"
        assert result.detail == "recovery took 250 ms (limit 100 ms)"

    def test_pass(self) -> None:
        """A 40 ms recovery passes."""
        assert recovery_ms(totals(recovery_ms=40.0), 100.0).status == "pass"

    def test_skip(self) -> None:
        """No measurement skips."""
        assert recovery_ms(totals(), 100.0).detail == "skipped: no recovery measurement"


class TestEvaluate:
    NAMES = [
        "server_alive",
        "connect_success_pct",
        "session_success_pct",
        "memory_growth_mb",
        "memory_growth_pct",
        "leak_kb_per_cycle",
        "fd_growth",
        "lingering_connections",
        "agents_growth",
        "recovery_ms",
        "steady_p95_ms",
        "messages_lost",
        "messages_duplicated",
    ]

    def test_clean_run_passes(self) -> None:
        """A server that releases everything passes, with off and unmeasured checks skipped."""
        verdict = evaluate(scripted_run(), totals(1000), Thresholds())
        assert [c.name for c in verdict.checks] == self.NAMES
        assert [c.status for c in verdict.checks] == [
            "pass",
            "pass",
            "pass",
            "pass",
            "skip",
            "pass",
            "pass",
            "pass",
            "pass",
            "skip",
            "skip",
            "skip",
            "skip",
        ]
        assert verdict.passed
        assert verdict.exit_code == EXIT_PASS == 0
        assert verdict.summary() == "PASS"

    def test_leaky_run_fails(self) -> None:
        """A leak of memory, descriptors, connections and agents fails those checks with 3."""
        verdict = evaluate(
            scripted_run(leak_kb_per_cycle=32.0, lingering=4),
            totals(1000),
            Thresholds(),
            interrupted=True,
        )
        failed = [c.name for c in verdict.failed]
        assert failed == ["memory_growth_mb", "leak_kb_per_cycle", "lingering_connections", "agents_growth"]
        assert not verdict.passed
        assert verdict.interrupted
        assert verdict.exit_code == EXIT_FAIL == 3
        assert verdict.summary() == "FAIL (4 of 13 checks failed) (interrupted)"

    def test_skips_do_not_fail(self) -> None:
        """A verdict of only skipped checks passes."""
        verdict = Verdict([CheckResult("x", "skip", None, None, "", "skipped: nothing")])
        assert verdict.passed
        assert verdict.exit_code == 0


def test_steady_p95_is_off_by_default_and_can_fail_and_pass() -> None:
    """The steady-user latency check: off at 0, skipped with no steady users, pass and fail by its limit."""
    from monitors.checks import ClientTotals, steady_p95_ms

    base = ClientTotals(connect_attempts=1, connect_failures=0, cycles_completed=1, users=1)
    assert steady_p95_ms(base, 0).detail == "skipped: off (max_steady_p95_ms is 0)"
    assert steady_p95_ms(base, 50).detail == "skipped: no steady users (give --steady-users)"
    slow = ClientTotals(1, 0, 1, 1, steady_p95_ms=80.0, steady_echoes=200)
    result = steady_p95_ms(slow, 50)
    assert result.status == "fail"
    assert result.detail == "steady users' p95 echo latency 80 ms over 200 echoes (limit 50 ms)"
    assert steady_p95_ms(slow, 100).status == "pass"


def test_a_recovery_probe_that_never_succeeds_fails() -> None:
    """No good round trip after flapping is a failed recovery, not a skipped one."""
    from monitors.checks import ClientTotals, recovery_ms

    totals = ClientTotals(1, 0, 1, 1, recovery_failure="connection refused")
    result = recovery_ms(totals, 100)
    assert result.status == "fail"
    assert result.detail == "no good round trip after flapping: connection refused"


def test_a_recovery_probe_whose_service_broke_again_fails() -> None:
    """A probe that recovered fast but could not finish its exchange (e.g. no close reply) fails recovery."""
    from monitors.checks import ClientTotals, recovery_ms

    broke = "service broke again after recovering: close timed out"
    result = recovery_ms(ClientTotals(1, 0, 1, 1, recovery_ms=3.0, recovery_failure=broke), 100)
    assert result.status == "fail"
    assert result.detail == f"recovery took 3 ms (limit 100 ms), then {broke}"


def test_an_interrupted_run_without_settle_skips_the_settled_level_checks() -> None:
    """Stopped mid-flap, held connections are the load itself: settled-level checks are skipped, not failed."""
    from monitors.checks import ClientTotals, Thresholds, evaluate
    from monitors.sample import ResourceSample
    from monitors.timeline import Timeline

    timeline = Timeline(
        [
            ResourceSample(t_s=0, pid=1, rss_bytes=10_000_000, open_fds=10, tcp_states={}, agents=0, phase="baseline"),
            ResourceSample(
                t_s=1, pid=1, rss_bytes=90_000_000, open_fds=60, tcp_states={"ESTABLISHED": 50}, agents=50,
                phase="flapping", cycles_completed=10,
            ),
        ]
    )  # fmt: skip
    totals = ClientTotals(connect_attempts=50, connect_failures=0, cycles_completed=10, users=50)
    interrupted = {c.name: c for c in evaluate(timeline, totals, Thresholds(), interrupted=True).checks}
    for name in ("memory_growth_mb", "fd_growth", "lingering_connections", "agents_growth"):
        assert interrupted[name].status == "skip"
        assert interrupted[name].detail == "skipped: the run was interrupted before the settle phase"
    judged = {c.name: c for c in evaluate(timeline, totals, Thresholds(), interrupted=False).checks}
    assert judged["lingering_connections"].status == "fail"  # a run that ended on its own is judged as it is


class TestSettleOutcomes:
    CAPPED = SettleOutcome(
        flap_round=0,
        duration_s=60.2,
        reason="stopped at --settle-max-s 60 s: agents still falling (184 → 12)",
        capped=True,
        max_s=60.0,
        still_falling={"agents": (184.0, 12.0)},
    )

    def test_a_check_failed_by_a_series_still_falling_at_the_cap_says_so(self) -> None:
        """Agents still falling when --settle-max-s cut the settle off: the words say so before the levels."""
        verdict = evaluate(scripted_run(lingering=12), totals(), Thresholds(), settles=[self.CAPPED])
        agents = next(c for c in verdict.checks if c.name == "agents_growth")
        assert agents.status == "fail"
        assert agents.detail == (
            "agents still falling at --settle-max-s 60 s: 184 → 12;"
            " server agents grew by 12 over baseline (limit 0): 0 → 12"
        )
        assert verdict.settles == [self.CAPPED]

    def test_a_leak_flat_above_its_baseline_keeps_the_leak_words(self) -> None:
        """A failed check whose series was not among the still falling reads as a leak, as before."""
        verdict = evaluate(scripted_run(lingering=12), totals(), Thresholds(), settles=[self.CAPPED])
        fds = next(c for c in verdict.checks if c.name == "fd_growth")
        assert fds.detail == "open file descriptors grew by 12 over baseline (limit 10): 20 → 32"

    def test_a_passing_check_stays_passed_while_still_falling(self) -> None:
        """Still falling but already within the limit: the check passes and its words stay."""
        verdict = evaluate(
            scripted_run(lingering=12), totals(), Thresholds(max_agents_growth=20), settles=[self.CAPPED]
        )
        agents = next(c for c in verdict.checks if c.name == "agents_growth")
        assert agents.status == "pass"
        assert agents.detail == "server agents grew by 12 over baseline (limit 20): 0 → 12"

    def test_without_settle_outcomes_the_verdict_is_unchanged(self) -> None:
        """No settles given: the same checks as before, and no settles reported."""
        timeline = scripted_run(lingering=12)
        plain = evaluate(timeline, totals(), Thresholds())
        assert plain.settles == []
        flat = dataclasses.replace(self.CAPPED, capped=False, still_falling={}, reason="settled after 5 s: x")
        assert evaluate(timeline, totals(), Thresholds(), settles=[flat]).checks == plain.checks

    def test_the_last_settled_rounds_settle_is_the_one_judged(self) -> None:
        """With two rounds, only round 2's cut-off settle words the checks; round 1's is only reported."""
        timeline = Timeline(
            [
                sample(0.0, agents=0),
                sample(1.0, PHASE_FLAPPING, agents=50, flap_round=1, cycles_completed=10),
                sample(2.0, PHASE_SETTLE, agents=0, flap_round=1, cycles_completed=10),
                sample(3.0, PHASE_FLAPPING, agents=50, flap_round=2, cycles_completed=20),
                sample(4.0, PHASE_SETTLE, agents=1, flap_round=2, cycles_completed=20),
            ]
        )
        first = dataclasses.replace(self.CAPPED, flap_round=1)
        second = dataclasses.replace(
            self.CAPPED, flap_round=2, still_falling={"agents": (50.0, 1.0)}, reason="stopped: agents"
        )
        agents = next(
            c
            for c in evaluate(timeline, totals(), Thresholds(), rounds=2, settles=[first, second]).checks
            if c.name == "agents_growth"
        )
        assert agents.detail == (
            "agents still falling at --settle-max-s 60 s: 50 → 1;"
            " server agents grew by 1 more in round 2 (leak: 0.1 per cycle; limit 0 more): 0 → 0 → 1"
        )
        assert judged_settle(timeline, [first]) is first  # no outcome of round 2: the last one given

    def test_settle_line(self) -> None:
        """Each settle is one line: its round and its reason."""
        assert settle_line(self.CAPPED) == (
            "round 0 settle: stopped at --settle-max-s 60 s: agents still falling (184 → 12)"
        )


class TestMessagesLost:
    @staticmethod
    def stream(**counts: int) -> ClientTotals:
        return ClientTotals(100, 0, 100, 10, continuity=ContinuityCounts(**counts))

    def test_skipped_without_a_stream(self) -> None:
        """No stream: in the conversation, nothing to judge: both checks say so."""
        base = ClientTotals(100, 0, 100, 10)
        assert messages_lost(base, 0).detail.startswith("skipped: no stream: in the conversation")
        assert messages_duplicated(base, OFF).status == "skip"

    def test_a_server_that_never_resumed_fails_in_the_words_of_its_cause(self) -> None:
        """Lost messages and no recovery: the detail says the server resumed none of the sessions."""
        totals = self.stream(stream_messages=5000, messages_lost=412, resumes_asked=380, resumes_answered=380)
        result = messages_lost(totals, 0)
        assert result.status == "fail"
        assert result.observed == 412
        assert result.detail == "412 messages lost in 380 reconnects; the server resumed 0 of 380 sessions (limit 0)"

    def test_a_server_that_resumed_and_still_lost_says_how_many_sessions_lost(self) -> None:
        """Every session recovered and some still lost messages: the detail blames the replay, not the resume."""
        totals = self.stream(
            stream_messages=5000, messages_lost=12, resumes_asked=380, resumes_answered=380, sessions_resumed=380,
            sessions_with_loss=3,
        )  # fmt: skip
        result = messages_lost(totals, 0)
        assert result.status == "fail"
        assert result.detail == "the server resumed 380 of 380 sessions; 12 messages lost in 3 of them (limit 0)"

    def test_nothing_lost_passes(self) -> None:
        """A server that resumed every session and replayed everything passes."""
        totals = self.stream(stream_messages=5000, resumes_asked=380, resumes_answered=380, sessions_resumed=380)
        result = messages_lost(totals, 0)
        assert result.status == "pass"
        assert result.detail == (
            "the server resumed 380 of 380 sessions; no message lost (5,000 stream messages received) (limit 0)"
        )

    def test_a_limit_above_the_loss_passes(self) -> None:
        """--max-messages-lost allows that many."""
        totals = self.stream(stream_messages=50, messages_lost=3, resumes_asked=4, sessions_with_loss=1)
        result = messages_lost(totals, 5)
        assert result.status == "pass"
        assert result.detail == "3 messages lost in 1 of 4 reconnects (50 stream messages received) (limit 5)"

    def test_sessions_that_never_resumed_are_judged_alone(self) -> None:
        """No reconnect tried to resume: losses within sessions only, and the detail says why."""
        result = messages_lost(self.stream(stream_messages=10, chains=5), 0)
        assert result.status == "pass"
        assert "no reconnect tried to resume its session" in result.detail

    def test_a_stream_that_matched_nothing_fails(self) -> None:
        """A stream was defined and no message of it came: the check fails rather than pass on nothing."""
        result = messages_lost(self.stream(seq_unreadable=3), 0)
        assert result.status == "fail"
        assert result.detail.startswith("no stream message was received")
        assert result.detail.endswith("; 3 stream messages had no readable seq")
        early = ClientTotals(0, 0, 0, 4, continuity=ContinuityCounts())
        assert messages_lost(early, 0).detail == "skipped: no flap cycle has completed yet"  # the live verdict

    def test_duplicates_are_reported_when_off_and_judged_with_a_limit(self) -> None:
        """Off by default (QoS 1 allows duplicates) but counted; with a limit, more fails."""
        totals = self.stream(stream_messages=100, messages_duplicated=4)
        off = messages_duplicated(totals, OFF)
        assert (off.status, off.observed, off.limit) == ("skip", 4, None)
        assert off.detail == "off (--max-messages-duplicated -1): 4 stream messages received twice of 100"
        assert messages_duplicated(totals, 3).status == "fail"
        assert messages_duplicated(totals, 4).status == "pass"

    def test_only_the_duplicates_limit_can_be_off(self) -> None:
        """-1 turns --max-messages-duplicated off; other limits refuse it."""
        assert Thresholds().max_messages_duplicated == OFF
        assert Thresholds(max_messages_duplicated=0).max_messages_duplicated == 0
        with pytest.raises(ValueError, match="max_messages_lost must be a number >= 0"):
            Thresholds(max_messages_lost=-1)
