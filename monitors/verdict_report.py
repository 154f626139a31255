"""The verdict as a console table, JSON, JUnit XML, and the timeline as CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from .checks import CheckResult, ClientTotals, Verdict, fmt_number, settle_line
from .settle import SERIES_WORDS, SettleOutcome
from .timeline import ResourceLevels, Timeline

TIMELINE_CSV_HEADER = (
    "t_s",
    "phase",
    "round",
    "cycles_completed",
    "alive",
    "pid",
    "rss_bytes",
    "cpu_pct",
    "open_fds",
    "threads",
    "held_connections",
    "agents",
    "tcp_states",
)

_RESULT_WORD = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


# --- console table -------------------------------------------------------------


def _with_unit(value: float, unit: str) -> str:
    """`98.5%`, `23.4 MB`, `12 fds`."""
    number = fmt_number(value)
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def _observed_cell(check: CheckResult) -> str:
    return "-" if check.observed is None else _with_unit(check.observed, check.unit)


def _limit_cell(check: CheckResult) -> str:
    if check.limit is None:
        return "-"
    return ("<= " if check.bound == "max" else ">= ") + _with_unit(check.limit, check.unit)


def render_table(verdict: Verdict) -> str:
    """A fixed-width table of the checks, the VERDICT line, then why checks failed or skipped."""
    header = ("check", "observed", "limit", "result")
    rows = [(c.name, _observed_cell(c), _limit_cell(c), _RESULT_WORD[c.status]) for c in verdict.checks]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, str, str, str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), line(("-" * widths[0], "-" * widths[1], "-" * widths[2], "-" * widths[3]))]
    out.extend(line(row) for row in rows)
    out.append("")
    out.append(f"VERDICT: {verdict.summary()}")
    explained = verdict.failed + verdict.skipped
    if explained:
        out.append("")
        out.extend(f"  {c.name}: {c.detail}" for c in explained)
    if verdict.settles:
        out.append("")
        out.extend(f"  {settle_line(outcome)}" for outcome in verdict.settles)
    return "\n".join(out) + "\n"


# --- JSON ------------------------------------------------------------------------


def _number(value: float | None, decimals: int = 3) -> float | int | None:
    """Rounded for JSON; whole numbers become ints, None stays None."""
    if value is None:
        return None
    rounded = round(float(value), decimals)
    return int(rounded) if rounded.is_integer() else rounded


def _levels_dict(levels: ResourceLevels) -> dict[str, Any]:
    return {
        "from": levels.source,
        "samples": levels.sample_count,
        "rss_bytes": _number(levels.rss_bytes, 0),
        "open_fds": _number(levels.open_fds),
        "threads": _number(levels.threads),
        "held_connections": _number(levels.held_connections),
        "agents": _number(levels.agents),
        "held_tcp_states": (None if levels.held_tcp_states is None else dict(sorted(levels.held_tcp_states.items()))),
    }


def _check_dict(check: CheckResult) -> dict[str, Any]:
    return {
        "name": check.name,
        "status": check.status,
        "passed": check.passed,
        "observed": _number(check.observed),
        "limit": _number(check.limit),
        "unit": check.unit,
        "bound": check.bound,
        "detail": check.detail,
    }


def verdict_to_dict(verdict: Verdict, timeline: Timeline, totals: ClientTotals) -> dict[str, Any]:
    """Everything a CI job needs to know about the run, ready for json.dumps."""
    return {
        "passed": verdict.passed,
        "exit_code": verdict.exit_code,
        "interrupted": verdict.interrupted,
        "checks": [_check_dict(c) for c in verdict.checks],
        "baseline": _levels_dict(timeline.baseline()),
        "settled": _levels_dict(timeline.settled()),
        "cycles": {
            "completed": totals.cycles_completed,
            "connect_attempts": totals.connect_attempts,
            "connect_failures": totals.connect_failures,
            "users": totals.users,
        },
        "samples": {"total": len(timeline), "by_phase": timeline.count_by_phase()},
        "rounds": rounds_to_list(timeline),
        "settles": [settle_dict(outcome) for outcome in verdict.settles],
    }


def settle_dict(outcome: SettleOutcome) -> dict[str, Any]:
    """One round's settle: how long, why it ended, and what was still falling at --settle-max-s."""
    return {
        "round": outcome.flap_round,
        "duration_s": _number(outcome.duration_s),
        "reason": outcome.reason,
        "capped": outcome.capped,
        "still_falling": {
            series: {"what": SERIES_WORDS.get(series, series), "from": _number(start), "to": _number(end)}
            for series, (start, end) in outcome.still_falling.items()
        },
    }


def rounds_to_list(timeline: Timeline) -> list[dict[str, Any]]:
    """Each round's flap cycles and settled levels (the rounds rule's inputs), in order."""
    return [
        {"round": r, "cycles": timeline.round_cycles(r), "settled": _levels_dict(timeline.settled(r))}
        for r in timeline.settled_rounds()
        if r >= 1
    ]


# --- files -------------------------------------------------------------------------


def _atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    directory = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_verdict_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write `data` (from verdict_to_dict) as indented UTF-8 JSON, atomically."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(path, text.encode("utf-8"))


def junit_xml(verdict: Verdict) -> bytes:
    """The verdict as a JUnit testsuite: one testcase per check."""
    suite = ET.Element(
        "testsuite",
        {
            "name": "flapping-pack",
            "tests": str(len(verdict.checks)),
            "failures": str(len(verdict.failed)),
            "errors": "0",
            "skipped": str(len(verdict.skipped)),
        },
    )
    if verdict.interrupted:
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", {"name": "interrupted", "value": "true"})
    for check in verdict.checks:
        case = ET.SubElement(suite, "testcase", {"classname": "flapping-pack.verdict", "name": check.name})
        if check.status == "fail":
            ET.SubElement(case, "failure", {"message": check.detail})
        elif check.status == "skip":
            ET.SubElement(case, "skipped", {"message": check.detail})
    ET.indent(suite)
    document: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit_xml(path: str | os.PathLike[str], verdict: Verdict) -> None:
    """Write the verdict as JUnit XML, atomically."""
    _atomic_write(path, junit_xml(verdict))


# --- timeline CSV ------------------------------------------------------------------


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _tcp_states_cell(states: Mapping[str, int] | None) -> str:
    """`ESTABLISHED=3;LISTEN=1`, states sorted; empty when unknown."""
    if states is None:
        return ""
    return ";".join(f"{state}={n}" for state, n in sorted(states.items()))


def timeline_csv_rows(timeline: Timeline) -> list[list[str]]:
    """The header, then one row per sample; t_s counts from the first sample."""
    rows = [list(TIMELINE_CSV_HEADER)]
    for s in timeline:
        rows.append(
            [
                f"{timeline.relative_t_s(s):.3f}",
                s.phase,
                str(s.flap_round),
                str(s.cycles_completed),
                "true" if s.alive else "false",
                _cell(s.pid),
                _cell(s.rss_bytes),
                "" if s.cpu_pct is None else f"{s.cpu_pct:.1f}",
                _cell(s.open_fds),
                _cell(s.threads),
                _cell(s.held_connections),
                _cell(s.agents),
                _tcp_states_cell(s.tcp_states),
            ]
        )
    return rows


def write_timeline_csv(path: str | os.PathLike[str], timeline: Timeline) -> None:
    """Write the timeline as CSV, atomically."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(timeline_csv_rows(timeline))
    _atomic_write(path, buffer.getvalue().encode("utf-8"))
