"""Tests of the verdict's renderings: console table, JSON, JUnit XML and timeline CSV."""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from monitors.checks import CheckResult, ClientTotals, Thresholds, Verdict, evaluate
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample
from monitors.settle import SettleOutcome
from monitors.timeline import Timeline
from monitors.verdict_report import (
    TIMELINE_CSV_HEADER,
    render_table,
    timeline_csv_rows,
    verdict_to_dict,
    write_junit_xml,
    write_timeline_csv,
    write_verdict_json,
)

MIB = 1024 * 1024

PASSED = CheckResult("server_alive", "pass", None, None, "", "server alive throughout (3 samples)")
MEMORY = CheckResult(
    "memory_growth_mb",
    "fail",
    23.4,
    15.0,
    "MB",
    "memory grew 23.4 MB over baseline (limit 15 MB): 61.7 MB → 85.1 MB",
)
CONNECTS = CheckResult(
    "connect_success_pct",
    "fail",
    98.5,
    100.0,
    "%",
    "98.5% of 200 connects succeeded (limit ≥ 100%)",
    "min",
)
SETTLED = SettleOutcome(1, 9.5, "settled after 9.5 s: agents flat for 2 refreshes (5 s)")
CAPPED = SettleOutcome(
    2,
    60.25,
    "stopped at --settle-max-s 60 s: agents still falling (184 → 12)",
    capped=True,
    max_s=60.0,
    still_falling={"agents": (184.0, 12.0)},
)
OFF = CheckResult("memory_growth_pct", "skip", None, None, "%", "skipped: off (max_memory_growth_pct is 0)")


def sample(t_s: float, phase: str = PHASE_BASELINE, **fields: Any) -> ResourceSample:
    """A sample at `t_s` in `phase` with the given measured fields."""
    return ResourceSample(t_s=t_s, phase=phase, **fields)


def small_run() -> tuple[Timeline, ClientTotals]:
    """Four samples over three phases and the clients' totals."""
    timeline = Timeline(
        [
            sample(50.0, pid=7, rss_bytes=60 * MIB, open_fds=20, tcp_states={"LISTEN": 1}),
            sample(
                51.5,
                PHASE_FLAPPING,
                pid=7,
                rss_bytes=61 * MIB,
                cpu_pct=37.25,
                open_fds=80,
                threads=4,
                agents=30,
                cycles_completed=120,
                tcp_states={"LISTEN": 1, "ESTABLISHED": 30, "CLOSE_WAIT": 2},
            ),
            sample(
                53.0,
                PHASE_SETTLE,
                pid=7,
                rss_bytes=60 * MIB + 1,
                open_fds=21,
                agents=0,
                cycles_completed=200,
                tcp_states={"TIME_WAIT": 4, "LISTEN": 1},
            ),
            sample(54.0, PHASE_SETTLE, alive=False, cycles_completed=200),
        ]
    )
    return timeline, ClientTotals(connect_attempts=200, connect_failures=3, cycles_completed=197, users=10)


class TestTable:
    def test_failing_table(self) -> None:
        """The table lists every check and ends with the FAIL line, then the failed sentences."""
        text = render_table(Verdict([PASSED, CONNECTS, MEMORY, OFF]))
        assert text == (
            "check                observed  limit     result\n"
            "-------------------  --------  --------  ------\n"
            "server_alive         -         -         PASS\n"
            "connect_success_pct  98.5%     >= 100%   FAIL\n"
            "memory_growth_mb     23.4 MB   <= 15 MB  FAIL\n"
            "memory_growth_pct    -         -         SKIP\n"
            "\n"
            "VERDICT: FAIL (2 of 4 checks failed)\n"
            "\n"
            "  connect_success_pct: 98.5% of 200 connects succeeded (limit ≥ 100%)\n"
            "  memory_growth_mb: memory grew 23.4 MB over baseline (limit 15 MB):"
            " 61.7 MB → 85.1 MB\n"
            "  memory_growth_pct: skipped: off (max_memory_growth_pct is 0)\n"
        )

    def test_passing_interrupted_table(self) -> None:
        """A passing, interrupted run says both on the VERDICT line."""
        text = render_table(Verdict([PASSED], interrupted=True))
        assert "server_alive" in text
        assert text.endswith("VERDICT: PASS (interrupted)\n")

    def test_each_settle_is_a_line_after_the_explanations(self) -> None:
        """Each round's settle says how long it took and why it ended, after the failed checks."""
        text = render_table(Verdict([PASSED, MEMORY], settles=[SETTLED, CAPPED]))
        assert text.endswith(
            "  memory_growth_mb: memory grew 23.4 MB over baseline (limit 15 MB): 61.7 MB → 85.1 MB\n"
            "\n"
            "  round 1 settle: settled after 9.5 s: agents flat for 2 refreshes (5 s)\n"
            "  round 2 settle: stopped at --settle-max-s 60 s: agents still falling (184 → 12)\n"
        )


class TestJson:
    def test_round_trip(self) -> None:
        """The dict survives json.dumps/loads and carries checks, levels, cycles and samples."""
        timeline, totals = small_run()
        verdict = evaluate(timeline, totals, Thresholds())
        data = json.loads(json.dumps(verdict_to_dict(verdict, timeline, totals)))
        assert data["passed"] is False
        assert data["exit_code"] == 3
        assert data["interrupted"] is False
        assert [c["name"] for c in data["checks"]] == [c.name for c in verdict.checks]
        alive = data["checks"][0]
        assert alive == {
            "name": "server_alive",
            "status": "fail",
            "passed": False,
            "observed": None,
            "limit": None,
            "unit": "",
            "bound": "max",
            "detail": "server process exited during settle (t=4 s)",
        }
        connects = data["checks"][1]
        assert connects["observed"] == 98.5
        assert connects["limit"] == 100
        assert next(c for c in data["checks"] if c["name"] == "memory_growth_pct")["passed"] is None  # off: skipped
        assert data["baseline"]["rss_bytes"] == 60 * MIB
        assert data["baseline"]["from"] == "baseline"
        assert data["settled"] == {
            "from": "settle",
            "samples": 2,
            "rss_bytes": 60 * MIB + 1,
            "open_fds": 21,
            "threads": None,
            "held_connections": 0,
            "agents": 0,
            "held_tcp_states": {},
        }
        assert data["cycles"] == {"completed": 197, "connect_attempts": 200, "connect_failures": 3, "users": 10}
        assert data["samples"] == {"total": 4, "by_phase": {"baseline": 1, "flapping": 1, "settle": 2}}
        assert data["settles"] == []

    def test_settles_say_how_long_why_and_what_was_still_falling(self) -> None:
        """Each settle is an object: round, duration, reason, whether capped, the series still falling."""
        timeline, totals = small_run()
        verdict = evaluate(timeline, totals, Thresholds(), settles=[SETTLED, CAPPED])
        data = json.loads(json.dumps(verdict_to_dict(verdict, timeline, totals)))
        assert data["settles"] == [
            {
                "round": 1,
                "duration_s": 9.5,
                "reason": "settled after 9.5 s: agents flat for 2 refreshes (5 s)",
                "capped": False,
                "still_falling": {},
            },
            {
                "round": 2,
                "duration_s": 60.25,
                "reason": "stopped at --settle-max-s 60 s: agents still falling (184 → 12)",
                "capped": True,
                "still_falling": {"agents": {"what": "agents", "from": 184, "to": 12}},
            },
        ]

    def test_floats_are_rounded(self) -> None:
        """Observed values are rounded to three decimals."""
        check = CheckResult("leak_kb_per_cycle", "pass", 1.23456789, 16.0, "KB/cycle", "x")
        data = verdict_to_dict(Verdict([check]), Timeline(), ClientTotals(0, 0, 0, 0))
        assert data["checks"][0]["observed"] == 1.235
        assert data["settled"]["from"] == "none"

    def test_write_is_atomic_and_utf8(self, tmp_path: Path) -> None:
        """The JSON file is written whole, in UTF-8, with no temporary file left behind."""
        path = tmp_path / "out" / "verdict.json"
        write_verdict_json(path, {"detail": "61.7 MB → 85.1 MB"})
        assert json.loads(path.read_text(encoding="utf-8")) == {"detail": "61.7 MB → 85.1 MB"}
        assert os.listdir(path.parent) == ["verdict.json"]


class TestJunit:
    def test_counts_and_messages(self, tmp_path: Path) -> None:
        """One testcase per check; failures and skips carry the detail sentence."""
        path = tmp_path / "junit.xml"
        write_junit_xml(path, Verdict([PASSED, CONNECTS, MEMORY, OFF], interrupted=True))
        suite = ET.parse(path).getroot()
        assert suite.tag == "testsuite"
        assert suite.attrib["name"] == "flapping-pack"
        assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == ("4", "2", "1")
        cases = suite.findall("testcase")
        assert [c.attrib["name"] for c in cases] == [
            "server_alive",
            "connect_success_pct",
            "memory_growth_mb",
            "memory_growth_pct",
        ]
        assert {c.attrib["classname"] for c in cases} == {"flapping-pack.verdict"}
        assert cases[0].find("failure") is None
        failure = cases[2].find("failure")
        assert failure is not None
        assert failure.attrib["message"] == MEMORY.detail
        skipped = cases[3].find("skipped")
        assert skipped is not None
        assert skipped.attrib["message"] == OFF.detail
        assert len(suite.findall(".//failure")) == 2
        assert suite.find("properties/property[@name='interrupted']") is not None
        assert os.listdir(tmp_path) == ["junit.xml"]


class TestTimelineCsv:
    def test_rows(self) -> None:
        """Header first, then one row per sample with time from the first sample."""
        timeline, _ = small_run()
        rows = timeline_csv_rows(timeline)
        assert rows[0] == list(TIMELINE_CSV_HEADER)
        assert ",".join(rows[0]) == (
            "t_s,phase,round,cycles_completed,alive,pid,rss_bytes,cpu_pct,open_fds,threads,held_connections,agents,"
            "tcp_states"
        )
        assert len(rows) == 5
        assert rows[2] == [
            "1.500",
            "flapping",
            "0",
            "120",
            "true",
            "7",
            str(61 * MIB),
            "37.2",
            "80",
            "4",
            "32",
            "30",
            "CLOSE_WAIT=2;ESTABLISHED=30;LISTEN=1",
        ]
        assert rows[4] == ["4.000", "settle", "0", "200", "false", "", "", "", "", "", "", "", ""]

    def test_write(self, tmp_path: Path) -> None:
        """The written CSV reads back as the same rows."""
        timeline, _ = small_run()
        path = tmp_path / "timeline.csv"
        write_timeline_csv(path, timeline)
        with path.open(newline="", encoding="utf-8") as f:
            assert list(csv.reader(f)) == timeline_csv_rows(timeline)
