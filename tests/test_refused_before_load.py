"""Output paths that cannot be written and run times too short for the phases are refused before any load."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import pytest

from tests.support.locust_process import LocustRun

OUTPUT_OPTIONS = ["--verdict-json", "--junit-xml", "--resource-csv"]


def assert_refused(run: LocustRun, line_start: str) -> str:
    """Exit 2 with exactly one error line starting with `line_start`, no traceback, no request made."""
    assert run.exit_code == 2, run.output[-2000:]
    lines = [line for line in run.output.splitlines() if line.startswith(f"flapping-pack: {line_start}")]
    assert len(lines) == 1, run.output[-2000:]
    assert "Traceback" not in run.output
    assert "WS" not in run.output  # no request was made
    assert "baseline phase" not in run.output  # no phase started
    return lines[0]


@pytest.mark.parametrize("option", OUTPUT_OPTIONS)
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_load(locust, option: str) -> None:
    """A path under /proc (where os.access says yes to root) is found unwritable at start: exit 2 naming the option."""
    started = time.monotonic()
    run = locust(option, "/proc/no/such/dir/out.file", timeout_s=60)
    line = assert_refused(run, f"{option}: cannot write to /proc/no/such/dir")
    assert "(" in line  # the reason the system gave
    assert time.monotonic() - started < 30  # not after a whole run


def test_an_existing_folder_that_cannot_be_written_is_refused(locust) -> None:
    """A folder that exists but takes no new file (/proc) is refused too, not only a missing one."""
    run = locust("--junit-xml", "/proc/verdict.xml", timeout_s=60)
    assert_refused(run, "--junit-xml: cannot write to /proc")


def test_missing_output_folders_are_made_at_start(locust, tmp_path: Path) -> None:
    """Missing parent folders of every output file are made before the run starts, and the files are written."""
    nested = tmp_path / "made" / "at" / "start"
    paths = {option: nested / option.strip("-") for option in OUTPUT_OPTIONS}
    args = [arg for option, path in paths.items() for arg in (option, str(path))]
    run = locust(*args)
    assert run.exit_code == 0, run.output[-3000:]
    for path in paths.values():
        assert path.is_file(), path
    assert not list(nested.glob(".flapping-pack-probe-*"))  # the write probe leaves nothing behind


def test_a_run_time_too_short_for_the_phases_is_refused(locust) -> None:
    """-t 3s with a 2 s baseline and a 5 s settle leaves no flapping: exit 2 naming -t and the least run time (8 s)."""
    run = locust("-t", "3s", "--baseline-s", "2", "--settle-s", "5", timeout_s=60)
    line = assert_refused(run, "-t 3s: too short for the phases")
    assert "the least run time is 8s (2 s baseline + 1 s of flapping + 5 s settle)" in line


def test_a_run_time_that_fits_runs(locust) -> None:
    """-t with room for baseline, a second of flapping and settle runs and passes (1 + 1 + 1 s fits in -t 3s)."""
    run = locust("-t", "3s", "--flap-cycles", "2")
    assert run.exit_code == 0, run.output[-3000:]
    assert run.verdict["passed"] is True


def ws_rows(run: LocustRun) -> dict[str, int]:
    """Every WS row of Locust's --csv stats and of the stats tables it printed: name -> request count."""
    with open(run.out_dir / "run_stats.csv") as file:
        rows = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(file) if row["Type"] == "WS"}
    # The request tables printed during and after the run (the last one after the verdict is made):
    # "WS  name  # reqs  # fails(%) | ...", not the percentile tables.
    for name, count in re.findall(r"^WS\s+(\S+)\s+(\d+)\s+\d+\(", run.output, flags=re.MULTILINE):
        rows[name] = min(rows.get(name, int(count)), int(count))
    return rows


def test_the_stats_show_rows_only_for_what_ran(locust) -> None:
    """Without steady users there is no steady row; without echo no echo row; every row shown has requests."""
    run = locust("--no-flap-echo")
    assert run.exit_code == 0, run.output[-3000:]
    rows = ws_rows(run)
    assert rows, run.output[-2000:]
    assert all(count > 0 for count in rows.values()), rows
    assert not [name for name in rows if name.startswith("steady")], rows
    assert "echo" not in rows, rows


def test_steady_rows_appear_when_steady_users_ran(locust) -> None:
    """With steady users their rows are shown, with requests: the rows follow what ran."""
    run = locust("--steady-users", "1", "--max-steady-p95-ms", "500")
    assert run.exit_code == 0, run.output[-3000:]
    rows = ws_rows(run)
    assert rows.get("steady-connect", 0) >= 1, rows
    assert all(count > 0 for count in rows.values()), rows
