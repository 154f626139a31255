"""Pass/fail checks: each says whether it failed and why, in the sentence the user reads.

Pure code: a Timeline and client totals in, a Verdict out. A check with no data is
skipped with its reason, never passed silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from scenarios.continuity import ContinuityCounts

from .leak import LeakUnknown, estimate_leak
from .rounds import ALLOCATOR_NOISE_MB, RoundGrowth, round_growth
from .sample import MIB, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample
from .settle import SettleOutcome
from .timeline import ResourceLevels, Timeline

KIB = 1024  # "KB" means KiB

EXIT_PASS = 0
EXIT_FAIL = 3

Status = Literal["pass", "fail", "skip"]
Bound = Literal["max", "min"]


_T = TypeVar("_T", int, float)


OFF = -1  # a limit that can be turned off takes this value when it is off


def _threshold(default: _T, unit: str, help: str, can_be_off: bool = False) -> _T:
    """A Thresholds field whose metadata carries its unit and one line of help; `can_be_off`: OFF turns it off."""
    return field(default=default, metadata={"unit": unit, "help": help, "can_be_off": can_be_off})


@dataclass(frozen=True)
class Thresholds:
    """Limits of the verdict; the one place their defaults live."""

    min_connect_success_pct: float = _threshold(
        100.0, "%", "lowest share of connects that must establish a session (handshake and every open step)"
    )
    min_session_success_pct: float = _threshold(
        100.0, "%", "lowest share of established sessions whose every step and disconnect must succeed"
    )
    max_memory_growth_mb: float = _threshold(
        15.0, "MB", "most the server's resident memory may grow from baseline to settled"
    )
    max_memory_growth_pct: float = _threshold(
        0.0, "%", "most the server's resident memory may grow, in % of baseline; 0 turns it off"
    )
    max_leak_kb_per_cycle: float = _threshold(
        16.0, "KB/cycle", "largest sustained memory growth per flap cycle (Theil-Sen slope)"
    )
    max_fd_growth: int = _threshold(10, "fds", "most open file descriptors may grow from baseline to settled")
    max_lingering_connections: int = _threshold(
        0, "connections", "most server-side TCP connections still held after settling, over baseline"
    )
    max_agents_growth: int = _threshold(
        0, "agents", "most per-connection server objects (agents metric) left after settling"
    )
    max_recovery_ms: float = _threshold(100.0, "ms", "longest recovery time; skipped when not measured")
    max_steady_p95_ms: float = _threshold(
        0.0, "ms", "highest p95 echo latency of the steady users during flapping; 0 turns it off"
    )
    max_messages_lost: int = _threshold(
        0, "messages", "most stream messages lost across reconnects, all users (needs a stream: in the conversation)"
    )
    max_messages_duplicated: int = _threshold(
        OFF, "messages", "most stream messages received twice, all users; -1 turns it off", can_be_off=True
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["can_be_off"] and value == OFF:
                continue
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ValueError(f"{f.name} must be a number >= 0, got {value!r}")
        if self.min_connect_success_pct > 100:
            raise ValueError(f"min_connect_success_pct must be <= 100, got {self.min_connect_success_pct!r}")


@dataclass(frozen=True)
class ThresholdInfo:
    """What the options layer needs to offer one threshold."""

    name: str  # field name of Thresholds, e.g. max_memory_growth_mb
    default: float  # its default value
    value_type: type  # int or float, for the option parser
    unit: str  # e.g. "MB"
    help: str  # one line
    can_be_off: bool = False  # OFF (-1) turns it off


def threshold_info() -> list[ThresholdInfo]:
    """Every threshold with its default, type, unit and help, in declaration order."""
    defaults = Thresholds()
    return [
        ThresholdInfo(
            name=f.name,
            default=getattr(defaults, f.name),
            value_type=type(getattr(defaults, f.name)),
            unit=f.metadata["unit"],
            help=f.metadata["help"],
            can_be_off=f.metadata["can_be_off"],
        )
        for f in dataclasses.fields(Thresholds)
    ]


@dataclass
class ClientTotals:
    """What the load generator's clients did, summed over all users."""

    connect_attempts: int
    connect_failures: int  # connects that did not establish a session (handshake or an open step failed)
    cycles_completed: int
    users: int
    recovery_ms: float | None = None  # measured recovery time, when a scenario measures it
    recovery_failure: str | None = None  # why the recovery probe never got a good exchange, or broke after one
    steady_p95_ms: float | None = None  # p95 echo latency of the steady users, when there were any
    steady_echoes: int = 0  # how many echoes the steady users timed
    generator_limited: str | None = None  # why failures were the load generator's own fault
    sessions_succeeded: int = 0  # established sessions whose every step and disconnect succeeded
    sessions_failed: int = 0  # established sessions a failed step, a server close or a failed disconnect ended
    continuity: ContinuityCounts | None = None  # the users' streams, when the conversation defines one


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; `detail` is the exact sentence shown to the user."""

    name: str  # JSON name, e.g. memory_growth_mb
    status: Status
    observed: float | None  # None when not measured
    limit: float | None  # None when the check has no numeric limit or is off
    unit: str
    detail: str
    bound: Bound = "max"  # whether `limit` is a maximum or a minimum

    @property
    def passed(self) -> bool | None:
        """True or False, or None when skipped."""
        return None if self.status == "skip" else self.status == "pass"


@dataclass
class Verdict:
    """All check results of a run."""

    checks: list[CheckResult]
    interrupted: bool = False  # the run stopped early (user or time limit); still judged
    settles: list[SettleOutcome] = field(default_factory=list)  # how each round's settle ended, in order

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def skipped(self) -> list[CheckResult]:
        """The checks that were skipped."""
        return [c for c in self.checks if c.status == "skip"]

    @property
    def passed(self) -> bool:
        """No check failed (skipped checks do not fail the run)."""
        return not self.failed

    @property
    def exit_code(self) -> int:
        """Process exit code: 0 when passed, 3 when a check failed."""
        return EXIT_PASS if self.passed else EXIT_FAIL

    def summary(self) -> str:
        """The VERDICT line's text: PASS, or e.g. FAIL (2 of 9 checks failed); "(interrupted)" when so."""
        text = "PASS" if self.passed else f"FAIL ({len(self.failed)} of {len(self.checks)} checks failed)"
        return f"{text} (interrupted)" if self.interrupted else text


# --- formatting -------------------------------------------------------------


def fmt_number(value: float, decimals: int = 1) -> str:
    """At most `decimals` decimals, trailing zeros dropped: 15.0 -> "15", 23.44 -> "23.4"."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _fmt_against(value: float, limit: float) -> str:
    """`value` with enough decimals (up to 3) not to print the same as a different limit."""
    decimals = 1
    while decimals < 3 and value != limit and fmt_number(value, decimals) == fmt_number(limit, decimals):
        decimals += 1
    return fmt_number(value, decimals)


def _mb(n_bytes: float) -> str:
    return f"{fmt_number(n_bytes / MIB)} MB"


def _plural(n: float, word: str) -> str:
    return f"{fmt_number(n)} {word}" + ("" if n == 1 else "s")


_NO_SETTLE = "; no settle phase, so measured at the end of flapping"


def _no_settle_note(settled: ResourceLevels) -> str:
    return _NO_SETTLE if settled.source == PHASE_FLAPPING else ""


def _status(ok: bool) -> Status:
    return "pass" if ok else "fail"


def _skip(name: str, unit: str, limit: float | None, reason: str, bound: Bound = "max") -> CheckResult:
    return CheckResult(name, "skip", None, limit, unit, f"skipped: {reason}", bound)


def _missing_reason(baseline: float | None, settled: float | None, what: str, monitors: str) -> str | None:
    """Why a baseline-to-settled comparison cannot be made, or None when it can."""
    if baseline is None and settled is None:
        return f"no {what} samples ({monitors})"
    if baseline is None:
        return f"no {what} samples in the baseline phase"
    if settled is None:
        return f"no {what} samples after flapping"
    return None


# --- checks, in evaluation order ---------------------------------------------


def server_alive(timeline: Timeline) -> CheckResult:
    """Fail if the server went away (process gone or metrics unreachable) or restarted."""
    name = "server_alive"
    if not timeline.has_observations():
        return _skip(name, "", None, "no server samples (no process or metrics monitor)")
    problems: list[str] = []
    death = timeline.first_death()
    if death is not None:
        when = f"during {death.phase} (t={fmt_number(timeline.relative_t_s(death))} s)"
        if timeline.knows_pid():
            problems.append(f"server process exited {when}")
        else:
            problems.append(f"server stopped answering its metrics endpoint {when}")
    change = timeline.pid_change()
    if change is not None:
        problems.append(f"server restarted: pid changed {change[0]} → {change[1]}")
    if problems:
        return CheckResult(name, "fail", None, None, "", "; ".join(problems))
    pid = next((s.pid for s in timeline.samples if s.pid is not None), None)
    count = _plural(len(timeline), "sample")
    seen = f"pid {pid}, {count}" if pid is not None else count
    return CheckResult(name, "pass", None, None, "", f"server alive throughout ({seen})")


def connect_success_pct(totals: ClientTotals, min_pct: float) -> CheckResult:
    """Fail if fewer than `min_pct` % of connect attempts succeeded."""
    name, unit = "connect_success_pct", "%"
    if totals.connect_attempts <= 0:
        return CheckResult(name, "fail", None, min_pct, unit, "no connect was attempted", "min")
    succeeded = totals.connect_attempts - totals.connect_failures
    pct = 100.0 * succeeded / totals.connect_attempts
    ok = pct >= min_pct
    detail = (
        f"{_fmt_against(pct, min_pct)}% of {totals.connect_attempts} connects succeeded"
        f" (limit ≥ {fmt_number(min_pct)}%)"
    )
    if not ok and totals.generator_limited:
        detail += f"; the failures came from the load generator itself: {totals.generator_limited}"
    return CheckResult(name, _status(ok), pct, min_pct, unit, detail, "min")


def session_success_pct(totals: ClientTotals, min_pct: float) -> CheckResult:
    """Fail if fewer than `min_pct` % of the established sessions ran their conversation and disconnect cleanly."""
    name, unit = "session_success_pct", "%"
    ended = totals.sessions_succeeded + totals.sessions_failed
    if ended <= 0:
        return _skip(name, unit, min_pct, "no session was established", "min")
    pct = 100.0 * totals.sessions_succeeded / ended
    detail = (
        f"{_fmt_against(pct, min_pct)}% of {_plural(ended, 'session')} ran every step and disconnected "
        f"without a failure (limit ≥ {fmt_number(min_pct)}%)"
    )
    return CheckResult(name, _status(pct >= min_pct), pct, min_pct, unit, detail, "min")


def memory_growth_mb(baseline: ResourceLevels, settled: ResourceLevels, max_mb: float) -> CheckResult:
    """Fail if resident memory grew more than `max_mb` MiB from baseline to settled."""
    name, unit = "memory_growth_mb", "MB"
    reason = _missing_reason(baseline.rss_bytes, settled.rss_bytes, "memory", "no process or metrics monitor")
    if reason is not None or baseline.rss_bytes is None or settled.rss_bytes is None:
        return _skip(name, unit, max_mb, reason or "")
    growth = (settled.rss_bytes - baseline.rss_bytes) / MIB
    levels = f"{_mb(baseline.rss_bytes)} → {_mb(settled.rss_bytes)}"
    if growth >= 0:
        change = f"memory grew {_fmt_against(growth, max_mb)} MB over baseline"
    else:
        change = f"memory fell {fmt_number(-growth)} MB below baseline"
    detail = f"{change} (limit {fmt_number(max_mb)} MB): {levels}{_no_settle_note(settled)}"
    return CheckResult(name, _status(growth <= max_mb), growth, max_mb, unit, detail)


def memory_growth_pct(baseline: ResourceLevels, settled: ResourceLevels, max_pct: float) -> CheckResult:
    """Fail if resident memory grew more than `max_pct` % of baseline; off when the limit is 0."""
    name, unit = "memory_growth_pct", "%"
    if max_pct <= 0:
        return _skip(name, unit, None, "off (max_memory_growth_pct is 0)")
    reason = _missing_reason(baseline.rss_bytes, settled.rss_bytes, "memory", "no process or metrics monitor")
    if reason is not None or baseline.rss_bytes is None or settled.rss_bytes is None:
        return _skip(name, unit, max_pct, reason or "")
    if baseline.rss_bytes <= 0:
        return _skip(name, unit, max_pct, "baseline memory is 0 bytes")
    growth = 100.0 * (settled.rss_bytes - baseline.rss_bytes) / baseline.rss_bytes
    levels = f"{_mb(baseline.rss_bytes)} → {_mb(settled.rss_bytes)}"
    if growth >= 0:
        change = f"memory grew {_fmt_against(growth, max_pct)}% over baseline"
    else:
        change = f"memory fell {fmt_number(-growth)}% below baseline"
    detail = f"{change} (limit {fmt_number(max_pct)}%): {levels}{_no_settle_note(settled)}"
    return CheckResult(name, _status(growth <= max_pct), growth, max_pct, unit, detail)


def leak_kb_per_cycle(samples: Sequence[ResourceSample], max_kb: float) -> CheckResult:
    """Fail if memory keeps growing more than `max_kb` KiB per flap cycle (see leak.estimate_leak)."""
    name, unit = "leak_kb_per_cycle", "KB/cycle"
    estimate = estimate_leak(samples)
    if isinstance(estimate, LeakUnknown):
        return _skip(name, unit, max_kb, estimate.reason)
    slope = estimate.slope_kb_per_cycle
    if slope >= 0:
        change = f"memory grew {_fmt_against(slope, max_kb)} KB per flap cycle"
    else:
        change = f"memory fell {fmt_number(-slope)} KB per flap cycle"
    detail = (
        f"{change} (limit {fmt_number(max_kb)} KB): sustained trend over"
        f" {estimate.points} samples, cycles {estimate.first_cycle} → {estimate.last_cycle}"
    )
    return CheckResult(name, _status(slope <= max_kb), slope, max_kb, unit, detail)


# --- the rounds rule: what later rounds added after round 1's high-water mark ----


def _per_cycle(amount: float, cycles: int, unit: str) -> str:
    """`128 KB per cycle`; empty without cycles."""
    if cycles <= 0:
        return ""
    value = amount / cycles
    return f"{fmt_number(value, 1 if abs(value) >= 1 else 2)}{' ' + unit if unit else ''} per cycle"


def _high_water(growth: RoundGrowth, later: float, shown_later: str) -> str:
    """What the later rounds did to a level that did not leak: nothing, or a little within the limits."""
    if later <= 0 or fmt_number(later) == "0":
        return f"high-water: no further growth in {growth.later_label}"
    return f"high-water: {growth.later_label} added only {shown_later}"


def leaks_per_cycle(growth: RoundGrowth, max_kb: float) -> bool:
    """Whether the memory the later rounds added is over `max_kb` KiB per cycle (and over the allocator noise)."""
    if growth.later_cycles <= 0 or growth.later_growth <= ALLOCATOR_NOISE_MB * MIB:
        return False
    return growth.later_growth / KIB / growth.later_cycles > max_kb


def memory_growth_mb_rounds(growth: RoundGrowth, max_mb: float, max_kb_per_cycle: float = math.inf) -> CheckResult:
    """Fail if the rounds after round 1 added more than `max_mb` MiB to its settled memory.

    The words say which it was: a leak (this check fails), a high-water mark (round 2 added
    nothing, or little within both limits), or neither when only the per-cycle limit is over.
    """
    name, unit = "memory_growth_mb", "MB"
    first, later, total = growth.first_growth / MIB, growth.later_growth / MIB, growth.total_growth / MIB
    ok = later <= max_mb
    opening = f"memory {'grew' if first >= 0 else 'fell'} {fmt_number(abs(first))} MB in {growth.first_label}"
    per_cycle = _per_cycle(growth.later_growth / KIB, growth.later_cycles, "KB")
    if not ok:
        leak = f"leak: {per_cycle}; " if per_cycle else "leak; "
        change = f"memory grew {_fmt_against(later, max_mb)} MB more in {growth.later_label} ({leak}"
    elif leaks_per_cycle(growth, max_kb_per_cycle):
        change = f"{opening} and {fmt_number(later)} MB more in {growth.later_label} ({per_cycle}; "
    else:
        shown = f"{fmt_number(later)} MB" + (f", {per_cycle}" if per_cycle else "")
        change = f"{opening} ({_high_water(growth, later, shown)}; "
    levels = f"{_mb(growth.baseline)} → {_mb(growth.first)} → {_mb(growth.last)}"
    overall = f"{'+' if total >= 0 else '-'}{fmt_number(abs(total))} MB"
    total_per_cycle = _per_cycle(growth.total_growth / KIB, growth.total_cycles, "KB")
    overall += f", {total_per_cycle}" if total_per_cycle else ""
    detail = f"{change}limit {fmt_number(max_mb)} MB more): {levels}; baseline to settled {overall}"
    return CheckResult(name, _status(ok), later, max_mb, unit, detail)


def memory_growth_pct_rounds(growth: RoundGrowth, max_pct: float) -> CheckResult:
    """Fail if the rounds after round 1 added more than `max_pct` % of the baseline memory; off at 0."""
    name, unit = "memory_growth_pct", "%"
    if max_pct <= 0:
        return _skip(name, unit, None, "off (max_memory_growth_pct is 0)")
    if growth.baseline <= 0:
        return _skip(name, unit, max_pct, "baseline memory is 0 bytes")
    later = 100.0 * growth.later_growth / growth.baseline
    first = 100.0 * growth.first_growth / growth.baseline
    ok = later <= max_pct
    if later > 0:
        change = f"memory grew {_fmt_against(later, max_pct)}% of baseline more in {growth.later_label}"
    else:
        change = f"memory did not grow in {growth.later_label}"
    detail = (
        f"{change}, after {fmt_number(first)}% in {growth.first_label}"
        f"{'' if ok else ' (leak)'} (limit {fmt_number(max_pct)}% more):"
        f" {_mb(growth.baseline)} → {_mb(growth.first)} → {_mb(growth.last)}"
    )
    return CheckResult(name, _status(ok), later, max_pct, unit, detail)


def leak_kb_per_cycle_rounds(growth: RoundGrowth, max_kb: float) -> CheckResult:
    """Fail if the rounds after round 1 added more than `max_kb` KiB of settled memory per cycle.

    Growth under ALLOCATOR_NOISE_MB never fails: the limit is at least that noise spread
    over the later rounds' cycles, so very short rounds are not judged on noise.
    """
    name, unit = "leak_kb_per_cycle", "KB/cycle"
    cycles = growth.later_cycles
    if cycles <= 0:
        return _skip(name, unit, max_kb, f"no flap cycles counted in {growth.later_label}")
    per_cycle = growth.later_growth / KIB / cycles
    noise_kb = ALLOCATOR_NOISE_MB * 1024 / cycles
    limit = max(max_kb, noise_kb)
    ok = per_cycle <= limit
    if per_cycle >= 0:
        change = f"memory grew {_fmt_against(per_cycle, limit)} KB per cycle in {growth.later_label}"
    else:
        change = f"memory fell {fmt_number(-per_cycle)} KB per cycle in {growth.later_label}"
    over = f"{fmt_number(growth.later_growth / MIB)} MB over {_plural(cycles, 'cycle')}"
    limit_text = f"limit {fmt_number(limit)} KB"
    if noise_kb > max_kb:
        limit_text += f": {fmt_number(ALLOCATOR_NOISE_MB)} MB of allocator noise over {_plural(cycles, 'cycle')}"
    detail = f"{change} ({'' if ok else 'leak: '}{over}; {limit_text}), settled after round 1 to the end"
    return CheckResult(name, _status(ok), per_cycle, limit, unit, detail)


def count_growth_rounds(name: str, unit: str, what: str, growth: RoundGrowth, limit: int) -> CheckResult:
    """Fail if the rounds after round 1 added more than `limit` to a count (fds, agents)."""
    later = growth.later_growth
    ok = later <= limit
    opening = f"{what} {'grew' if growth.first_growth >= 0 else 'fell'} by {fmt_number(abs(growth.first_growth))}"
    if not ok:
        per_cycle = _per_cycle(later, growth.later_cycles, "")
        leak = f"leak: {per_cycle}; " if per_cycle else "leak; "
        change = f"{what} grew by {fmt_number(later)} more in {growth.later_label} ({leak}"
    elif later <= 0:
        change = f"{opening} in {growth.first_label} (high-water: no further growth in {growth.later_label}; "
    else:
        change = f"{opening} in {growth.first_label} and by {fmt_number(later)} more in {growth.later_label} ("
    levels = f"{fmt_number(growth.baseline)} → {fmt_number(growth.first)} → {fmt_number(growth.last)}"
    detail = f"{change}limit {fmt_number(limit)} more): {levels}"
    return CheckResult(name, _status(ok), later, float(limit), unit, detail)


def _count_growth(
    *,
    name: str,
    unit: str,
    what: str,
    sampled: str,
    monitors: str,
    baseline: float | None,
    settled: ResourceLevels,
    settled_value: float | None,
    limit: float,
) -> CheckResult:
    """Shared body of the count checks: `what` grew by N over baseline (limit L): b → s."""
    reason = _missing_reason(baseline, settled_value, sampled, monitors)
    if reason is not None or baseline is None or settled_value is None:
        return _skip(name, unit, float(limit), reason or "")
    growth = settled_value - baseline
    direction = "grew by" if growth >= 0 else "fell by"
    where = "over" if growth >= 0 else "below"
    detail = (
        f"{what} {direction} {fmt_number(abs(growth))} {where} baseline"
        f" (limit {fmt_number(limit)}): {fmt_number(baseline)} → {fmt_number(settled_value)}"
        f"{_no_settle_note(settled)}"
    )
    return CheckResult(name, _status(growth <= limit), growth, float(limit), unit, detail)


def fd_growth(baseline: ResourceLevels, settled: ResourceLevels, max_fds: int) -> CheckResult:
    """Fail if the server's open file descriptors grew by more than `max_fds` after settling."""
    return _count_growth(
        name="fd_growth",
        unit="fds",
        what="open file descriptors",
        sampled="file descriptor",
        monitors="no process monitor",
        baseline=baseline.open_fds,
        settled=settled,
        settled_value=settled.open_fds,
        limit=max_fds,
    )


def lingering_connections(baseline: ResourceLevels, settled: ResourceLevels, max_connections: int) -> CheckResult:
    """Fail if the server still holds more TCP connections than at baseline after settling."""
    name, unit = "lingering_connections", "connections"
    reason = _missing_reason(
        baseline.held_connections, settled.held_connections, "TCP connection", "no process monitor"
    )
    if reason is not None or baseline.held_connections is None or settled.held_connections is None:
        return _skip(name, unit, float(max_connections), reason or "")
    lingering = settled.held_connections - baseline.held_connections
    when = "after flapping (no settle phase)" if settled.source == PHASE_FLAPPING else "after settling"
    count = _plural(lingering, "TCP connection") if lingering > 0 else "no TCP connections"
    detail = (
        f"{count} lingering {when} (limit {max_connections}):"
        f" held {fmt_number(baseline.held_connections)} at baseline"
        f" → {fmt_number(settled.held_connections)} at the end"
    )
    if lingering > 0 and settled.held_tcp_states:
        states = ", ".join(f"{state}={n}" for state, n in sorted(settled.held_tcp_states.items()))
        detail += f" ({states})"
    return CheckResult(name, _status(lingering <= max_connections), lingering, float(max_connections), unit, detail)


def agents_growth(baseline: ResourceLevels, settled: ResourceLevels, max_agents: int) -> CheckResult:
    """Fail if the server's per-connection objects (agents metric) grew by more than `max_agents`."""
    name, unit = "agents_growth", "agents"
    if baseline.agents is None and settled.agents is None:
        return _skip(name, unit, float(max_agents), "no agents metric (no metrics monitor)")
    return _count_growth(
        name=name,
        unit=unit,
        what="server agents",
        sampled="agents metric",
        monitors="no metrics monitor",
        baseline=baseline.agents,
        settled=settled,
        settled_value=settled.agents,
        limit=max_agents,
    )


def recovery_ms(totals: ClientTotals, max_ms: float) -> CheckResult:
    """Fail if recovery took longer than `max_ms`; skipped when the scenario did not measure it."""
    name, unit = "recovery_ms", "ms"
    if totals.recovery_ms is None and totals.recovery_failure is not None:
        detail = f"no good round trip after flapping: {totals.recovery_failure}"
        return CheckResult(name, "fail", None, max_ms, unit, detail)
    if totals.recovery_ms is None:
        return _skip(name, unit, max_ms, "no recovery measurement")
    observed = totals.recovery_ms
    detail = f"recovery took {_fmt_against(observed, max_ms)} ms (limit {fmt_number(max_ms)} ms)"
    if totals.recovery_failure is not None:  # e.g. the server never answered the probe's close frame
        return CheckResult(name, "fail", observed, max_ms, unit, f"{detail}, then {totals.recovery_failure}")
    return CheckResult(name, _status(observed <= max_ms), observed, max_ms, unit, detail)


def steady_p95_ms(totals: ClientTotals, max_ms: float) -> CheckResult:
    """Fail if the steady users' p95 echo latency exceeded `max_ms`; off at 0, skipped without steady users."""
    name, unit = "steady_p95_ms", "ms"
    if max_ms == 0:
        return _skip(name, unit, None, "off (max_steady_p95_ms is 0)")
    if totals.steady_p95_ms is None or totals.steady_echoes == 0:
        return _skip(name, unit, max_ms, "no steady users (give --steady-users)")
    observed = totals.steady_p95_ms
    detail = (
        f"steady users' p95 echo latency {_fmt_against(observed, max_ms)} ms over "
        f"{totals.steady_echoes} echoes (limit {fmt_number(max_ms)} ms)"
    )
    return CheckResult(name, _status(observed <= max_ms), observed, max_ms, unit, detail)


NO_STREAM = "no stream: in the conversation (which pushes form each user's stream, and their seq:)"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _lost_words(counts: ContinuityCounts) -> str:
    """Why messages were lost, in the words of the cause: the server did not resume, or resumed and still lost."""
    lost, asked = counts.messages_lost, counts.resumes_asked
    resumed, with_loss = counts.sessions_resumed, counts.sessions_with_loss
    lost_text = _count(lost, "message") + " lost" if lost else "no message lost"
    received = f"{_count(counts.stream_messages, 'stream message')} received"
    if asked == 0:
        return (
            f"{lost_text} ({received}); no reconnect tried to resume its session, so each session was judged alone "
            "(resume: true resumes, except after a clean Socket.IO disconnect)"
        )
    if counts.resumes_answered == 0:  # the protocol does not say (raw): the conversation resumed by itself
        where = f"in {with_loss} of {_count(asked, 'reconnect')}" if lost else f"in {_count(asked, 'reconnect')}"
        return f"{lost_text} {where} ({received})"
    if resumed == asked:
        of_them = f"{lost_text} in {with_loss} of them" if lost else f"{lost_text} ({received})"
        return f"the server resumed {resumed} of {_count(asked, 'session')}; {of_them}"
    return f"{lost_text} in {_count(asked, 'reconnect')}; the server resumed {resumed} of {_count(asked, 'session')}"


def _unreadable_note(counts: ContinuityCounts) -> str:
    if not counts.seq_unreadable:
        return ""
    return f"; {_count(counts.seq_unreadable, 'stream message')} had no readable seq"


def messages_lost(totals: ClientTotals, max_lost: int) -> CheckResult:
    """Fail if more than `max_lost` stream messages were lost across reconnects; skipped without a stream."""
    name, unit = "messages_lost", "messages"
    counts = totals.continuity
    if counts is None:
        return _skip(name, unit, float(max_lost), NO_STREAM)
    if counts.stream_messages == 0 and totals.cycles_completed == 0:
        return _skip(name, unit, float(max_lost), "no flap cycle has completed yet")
    if counts.stream_messages == 0:
        detail = "no stream message was received: the stream: section matched nothing the server sent"
        return CheckResult(name, "fail", None, float(max_lost), unit, detail + _unreadable_note(counts))
    lost = counts.messages_lost
    detail = f"{_lost_words(counts)} (limit {max_lost}){_unreadable_note(counts)}"
    return CheckResult(name, _status(lost <= max_lost), float(lost), float(max_lost), unit, detail)


def messages_duplicated(totals: ClientTotals, max_duplicated: int) -> CheckResult:
    """Fail if more than `max_duplicated` stream messages came twice; reported but off at OFF (QoS 1 allows them)."""
    name, unit = "messages_duplicated", "messages"
    counts = totals.continuity
    if counts is None:
        return _skip(name, unit, None if max_duplicated == OFF else float(max_duplicated), NO_STREAM)
    duplicated = counts.messages_duplicated
    words = f"{_count(duplicated, 'stream message')} received twice of {counts.stream_messages:,}"
    if max_duplicated == OFF:
        return CheckResult(name, "skip", float(duplicated), None, unit, f"off (--max-messages-duplicated -1): {words}")
    detail = f"{words} (limit {max_duplicated})"
    return CheckResult(
        name, _status(duplicated <= max_duplicated), float(duplicated), float(max_duplicated), unit, detail
    )


def evaluate(
    timeline: Timeline,
    totals: ClientTotals,
    thresholds: Thresholds,
    interrupted: bool = False,
    rounds: int = 1,
    *,
    settles: Sequence[SettleOutcome] | None = None,
) -> Verdict:
    """Run every check in a fixed order: server health first, then clients, memory, handles.

    With `rounds` > 1 planned, memory, fds and agents are judged by the rounds rule (see
    `judge_rounds`); with one round, from baseline to settled. `settles` (one per round
    that settled, in order) are reported, and a failed check whose series was still falling
    when --settle-max-s cut its settle off says so (see `judge_still_falling`).
    """
    baseline = timeline.baseline()
    settled = timeline.settled()
    checks = [
        server_alive(timeline),
        connect_success_pct(totals, thresholds.min_connect_success_pct),
        session_success_pct(totals, thresholds.min_session_success_pct),
        memory_growth_mb(baseline, settled, thresholds.max_memory_growth_mb),
        memory_growth_pct(baseline, settled, thresholds.max_memory_growth_pct),
        leak_kb_per_cycle(timeline.samples, thresholds.max_leak_kb_per_cycle),
        fd_growth(baseline, settled, thresholds.max_fd_growth),
        lingering_connections(baseline, settled, thresholds.max_lingering_connections),
        agents_growth(baseline, settled, thresholds.max_agents_growth),
        recovery_ms(totals, thresholds.max_recovery_ms),
        steady_p95_ms(totals, thresholds.max_steady_p95_ms),
        messages_lost(totals, thresholds.max_messages_lost),
        messages_duplicated(totals, thresholds.max_messages_duplicated),
    ]
    if rounds > 1:
        checks = judge_rounds(checks, timeline, thresholds, interrupted)
    if interrupted and settled.source != PHASE_SETTLE:
        # Stopped mid-flap: what the server holds then is the load, not a leak.
        checks = [
            _skip(c.name, c.unit, c.limit, "the run was interrupted before the settle phase", c.bound)
            if c.name in SETTLED_LEVEL_CHECKS and c.status != "skip"
            else c
            for c in checks
        ]
    outcomes = list(settles or ())
    checks = judge_still_falling(checks, timeline, outcomes)
    return Verdict(checks=checks, interrupted=interrupted, settles=outcomes)


# Checks that compare settled levels with the baseline: meaningless without a settle phase.
SETTLED_LEVEL_CHECKS = frozenset(
    {"memory_growth_mb", "memory_growth_pct", "fd_growth", "lingering_connections", "agents_growth"}
)

# Checks the rounds rule judges: levels a server may raise to a high-water mark and keep.
ROUNDS_RULE_CHECKS = frozenset(
    {"memory_growth_mb", "memory_growth_pct", "leak_kb_per_cycle", "fd_growth", "agents_growth"}
)


def judge_rounds(
    checks: list[CheckResult], timeline: Timeline, thresholds: Thresholds, interrupted: bool
) -> list[CheckResult]:
    """The one-round checks, with memory, fds and agents judged on what the rounds after round 1 added.

    Without two settled rounds (the run was interrupted, or -t left no time for round 2),
    the one-round results stay, and say why.
    """
    memory = round_growth(timeline, "rss_bytes")
    fds = round_growth(timeline, "open_fds")
    agents = round_growth(timeline, "agents")
    by_rounds: dict[str, CheckResult] = {}
    if memory is not None:
        by_rounds["memory_growth_mb"] = memory_growth_mb_rounds(
            memory, thresholds.max_memory_growth_mb, thresholds.max_leak_kb_per_cycle
        )
        by_rounds["memory_growth_pct"] = memory_growth_pct_rounds(memory, thresholds.max_memory_growth_pct)
        by_rounds["leak_kb_per_cycle"] = leak_kb_per_cycle_rounds(memory, thresholds.max_leak_kb_per_cycle)
    if fds is not None:
        by_rounds["fd_growth"] = count_growth_rounds(
            "fd_growth", "fds", "open file descriptors", fds, thresholds.max_fd_growth
        )
    if agents is not None:
        by_rounds["agents_growth"] = count_growth_rounds(
            "agents_growth", "agents", "server agents", agents, thresholds.max_agents_growth
        )
    why = "the run was interrupted before round 2 settled" if interrupted else "round 2 has not settled"
    one_round = f"; {why}, so judged from baseline to settled (one round)"
    one_round_trend = f"; {why}, so judged by the trend during flapping (one round)"
    judged: list[CheckResult] = []
    for check in checks:
        if check.name in by_rounds:
            judged.append(by_rounds[check.name])
        elif check.name in ROUNDS_RULE_CHECKS and check.status != "skip":
            note = one_round_trend if check.name == "leak_kb_per_cycle" else one_round
            judged.append(dataclasses.replace(check, detail=check.detail + note))
        else:
            judged.append(check)
    return judged


# --- settles cut off by --settle-max-s -----------------------------------------------

# The series each settled-level check judges (a SETTLE_SERIES name).
CHECK_SERIES = {
    "memory_growth_mb": "rss_bytes",
    "memory_growth_pct": "rss_bytes",
    "fd_growth": "open_fds",
    "lingering_connections": "held_connections",
    "agents_growth": "agents",
}


def judged_settle(timeline: Timeline, settles: Sequence[SettleOutcome]) -> SettleOutcome | None:
    """The settle whose end the checks judge: the last settled round's, else the last one given."""
    if not settles:
        return None
    rounds = timeline.settled_rounds()
    if rounds:
        for outcome in reversed(settles):
            if outcome.flap_round == rounds[-1]:
                return outcome
    return settles[-1]


def judge_still_falling(
    checks: list[CheckResult], timeline: Timeline, settles: Sequence[SettleOutcome]
) -> list[CheckResult]:
    """Failed checks whose series was still falling when --settle-max-s ended the settle, said so first.

    Such a server was still giving back when it was judged: not the same failure as a leak
    that stays flat above its baseline. A check that passed stays passed.
    """
    outcome = judged_settle(timeline, settles)
    if outcome is None or not outcome.still_falling:
        return checks
    judged: list[CheckResult] = []
    for check in checks:
        series = CHECK_SERIES.get(check.name)
        words = None if series is None else outcome.still_falling_words(series)
        if check.status == "fail" and words is not None:
            check = dataclasses.replace(check, detail=f"{words}; {check.detail}")
        judged.append(check)
    return judged


def settle_line(outcome: SettleOutcome) -> str:
    """`round 2 settle: settled after 9.5 s: agents flat for 2 refreshes (5 s)`."""
    return f"round {outcome.flap_round} settle: {outcome.reason}"
