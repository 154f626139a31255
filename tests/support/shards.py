"""`--shard K/N`: run the K-th of N parts of the selected tests, so N pytest processes share a suite.

The suite's end-to-end runs mostly wait on clocks (holds, pauses, settles), not on the CPU,
so `./test.sh` runs it as parallel processes, one part each. Parts keep a test file whole
(its fixtures and servers stay in one process) and are balanced by each file's time:
measured (tests/durations.json, written by `./test.sh --record-durations`) or, for a file not
measured yet, estimated (an end-to-end test weighs far more than a unit test). Every process
collects the same tests and reads the same table, so every process computes the same parts.
"""

from __future__ import annotations

import fcntl
import heapq
import json
from collections import defaultdict
from pathlib import Path

import pytest

E2E_WEIGHT = 150  # an end-to-end test not measured yet: ~15 s, in tenths of a second
UNIT_WEIGHT = 1  # a unit test not measured yet: ~0.1 s
DURATIONS_FILE = Path(__file__).resolve().parents[1] / "durations.json"  # file (from the root) -> seconds


def measured_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """The table of each test file's measured seconds; empty when there is none."""
    try:
        return {str(name): float(seconds) for name, seconds in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


class DurationRecorder:
    """`--record-durations`: adds each file's setup, call and teardown times, then updates the table.

    Each part updates the files it ran, under a lock, so parallel parts merge their rows.
    """

    def __init__(self, root: Path, path: Path = DURATIONS_FILE) -> None:
        self.root = root  # test file names are kept relative to it
        self.path = path  # the table
        self.seconds: dict[str, float] = defaultdict(float)  # this process's files

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid.split("::", 1)[0]] += report.duration

    def pytest_sessionfinish(self) -> None:
        if not self.seconds:
            return
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = measured_durations(self.path)
            table.update({name: round(seconds, 1) for name, seconds in self.seconds.items()})
            self.path.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` as (K, N) with 1 <= K <= N; ValueError otherwise."""
    index, _, count = text.partition("/")
    k, n = int(index), int(count)
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K/N with 1 <= K <= N")
    return k, n


def shard_of_files(weights: dict[str, int], count: int) -> dict[str, int]:
    """Each file's part (0 to count - 1): the heaviest files first, each to the lightest part so far."""
    parts = [(0, index) for index in range(count)]
    heapq.heapify(parts)
    assignment: dict[str, int] = {}
    for name in sorted(weights, key=lambda n: (-weights[n], n)):
        load, index = heapq.heappop(parts)
        assignment[name] = index
        heapq.heappush(parts, (load + weights[name], index))
    return assignment


class ShardPlugin:
    """Deselects the tests of the other parts, after every other selection (-m, -k) was made."""

    def __init__(self, index: int, count: int, measured: dict[str, float] | None = None) -> None:
        self.index = index - 1  # this process's part, from 0
        self.count = count  # how many parts
        self.measured = measured if measured is not None else measured_durations()  # file -> seconds

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        estimated: dict[str, int] = defaultdict(int)
        for item in items:
            estimated[_file(item)] += E2E_WEIGHT if item.get_closest_marker("e2e") else UNIT_WEIGHT
        weights = {
            name: round(self.measured[name] * 10) if name in self.measured else weight
            for name, weight in estimated.items()
        }
        part = shard_of_files(weights, self.count)
        kept = [item for item in items if part[_file(item)] == self.index]
        dropped = [item for item in items if part[_file(item)] != self.index]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _file(item: pytest.Item) -> str:
    """The test file of an item, as its node id names it (relative to the root)."""
    return item.nodeid.split("::", 1)[0]
