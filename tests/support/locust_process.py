"""Run a real `locust` process against the pack and collect what it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Small and fast, but every phase present: 1 s baseline, 5 cycles, 1 s settle.
FAST_ARGS = [
    "--baseline-s", "1",
    "--settle-s", "1",
    "--monitor-interval-s", "0.2",
    "--flap-cycles", "5",
    "-u", "4",
    "-r", "4",
    # One round: tests of the clients or of one check need no second round to tell a leak
    # from a high-water mark; tests of that rule ask for rounds (test_leak_or_high_water_runs.py).
    "--flap-rounds", "1",
    # The recovery probe's limit (100 ms by default) is a timing on a loaded, shared machine:
    # tests of other checks must not fail on it; tests of recovery set their own limit.
    "--max-recovery-ms", "1000",
]  # fmt: skip


@dataclass
class LocustRun:
    """What one Locust process did: exit code, output and the files it wrote."""

    exit_code: int  # the process's exit code
    output: str  # stdout and stderr, interleaved
    out_dir: Path  # where --verdict-json, --junit-xml, --resource-csv and --csv went

    @property
    def verdict(self) -> dict[str, Any]:
        """The verdict JSON."""
        return json.loads((self.out_dir / "verdict.json").read_text())

    def check(self, name: str) -> dict[str, Any]:
        """One check of the verdict, by name."""
        return next(c for c in self.verdict["checks"] if c["name"] == name)

    def stats_row(self, name: str) -> dict[str, str]:
        """The row of Locust's --csv stats for a WS request name."""
        import csv

        with open(self.out_dir / "run_stats.csv") as file:
            return next(r for r in csv.DictReader(file) if r["Name"] == name and r["Type"] == "WS")


def locust_command(args: list[str], out_dir: Path, headless: bool = True) -> list[str]:
    """The command line of a pack run, writing its files into `out_dir`."""
    return [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"),
        *(["--headless"] if headless else []),
        "--verdict-json", str(out_dir / "verdict.json"),
        "--junit-xml", str(out_dir / "verdict.junit.xml"),
        "--resource-csv", str(out_dir / "resources.csv"),
        "--csv", str(out_dir / "run"),
        *FAST_ARGS,
        *args,
    ]  # fmt: skip


def run_locust(args: list[str], out_dir: Path, timeout_s: float = 120, env: dict[str, str] | None = None) -> LocustRun:
    """Run Locust to its end (killing its process group if it overruns, which fails the test)."""
    locust = LocustProcess(args, out_dir, env=env)
    try:
        exit_code = locust.wait(timeout_s)
    finally:
        locust.kill()
    return LocustRun(exit_code=exit_code, output=locust.output, out_dir=out_dir)


class LocustProcess:
    """A Locust process running in the background; its output is read by a thread."""

    def __init__(self, args: list[str], out_dir: Path, headless: bool = True, env: dict[str, str] | None = None):
        import threading

        self.out_dir = out_dir  # where its files go
        self.process = subprocess.Popen(  # its own session, so teardown can kill the whole group
            locust_command(args, out_dir, headless=headless),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._lines: list[str] = []  # output so far
        self._reader = threading.Thread(target=self._read, daemon=True)  # drains the pipe
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "".join(self._lines)

    def wait_for(self, needle: str, deadline_s: float = 60) -> str:
        """Wait until `needle` is printed; fail after the deadline or if the process ends first."""
        import time

        end = time.monotonic() + deadline_s
        while needle not in self.output:
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                if needle in self.output:
                    break
                raise AssertionError(f"locust ended before printing {needle!r}:\n{self.output[-3000:]}")
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} not printed within {deadline_s} s:\n{self.output[-3000:]}")
            time.sleep(0.05)
        return self.output

    def wait(self, timeout_s: float) -> int:
        """Wait for the exit code; fail if it takes longer."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"locust still running after {timeout_s} s:\n{self.output[-3000:]}") from None
        self._reader.join(timeout=2)
        return code

    def kill(self) -> None:
        """Kill the whole process group (teardown)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
