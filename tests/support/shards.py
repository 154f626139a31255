"""`--shard K/N`: run the K-th of N parts of the selected tests, so N pytest processes share a suite.

The suite's end-to-end runs mostly wait on clocks (holds, pauses, settles), not on the CPU,
so `./test.sh` runs it as parallel processes, one part each. Parts keep a test file whole
(its fixtures and servers stay in one process) and are balanced by an estimate of each
file's time: an end-to-end test weighs far more than a unit test. Every process collects the
same tests, so every process computes the same parts.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import pytest

E2E_WEIGHT = 150  # an end-to-end test: ~15 s
UNIT_WEIGHT = 1  # a unit test: ~0.1 s


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

    def __init__(self, index: int, count: int) -> None:
        self.index = index - 1  # this process's part, from 0
        self.count = count  # how many parts

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        weights: dict[str, int] = defaultdict(int)
        for item in items:
            weights[str(item.path)] += E2E_WEIGHT if item.get_closest_marker("e2e") else UNIT_WEIGHT
        part = shard_of_files(weights, self.count)
        kept = [item for item in items if part[str(item.path)] == self.index]
        dropped = [item for item in items if part[str(item.path)] != self.index]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept
