"""The suite's parts (`./test.sh` runs them side by side): every file in exactly one part, parts balanced."""

from __future__ import annotations

import pytest

from tests.support.shards import parse_shard, shard_of_files


def test_every_file_lands_in_exactly_one_part_and_the_heaviest_are_spread() -> None:
    """Three heavy files go to three parts; the light ones fill the lightest."""
    weights = {"a_runs.py": 900, "b_runs.py": 800, "c_runs.py": 700, "d.py": 50, "e.py": 40, "f.py": 30}
    parts = shard_of_files(weights, 3)
    assert set(parts) == set(weights)
    assert len({parts["a_runs.py"], parts["b_runs.py"], parts["c_runs.py"]}) == 3
    loads = [sum(w for name, w in weights.items() if parts[name] == index) for index in range(3)]
    assert max(loads) - min(loads) <= 900 - 700


def test_the_parts_are_the_same_in_every_process() -> None:
    """The assignment depends on the weights alone (ties broken by name), not on their order."""
    weights = {"x.py": 10, "y.py": 10, "z.py": 10, "w.py": 10}
    assert shard_of_files(weights, 2) == shard_of_files(dict(reversed(list(weights.items()))), 2)


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3"])
def test_a_bad_shard_is_refused(text: str) -> None:
    """K/N needs 1 <= K <= N."""
    with pytest.raises(ValueError):
        parse_shard(text)
