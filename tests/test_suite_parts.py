"""The suite's parts (`./test.sh` runs them side by side): every file in exactly one part, parts balanced."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.support.shards import DurationRecorder, measured_durations, parse_shard, shard_of_files


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


def test_recorded_durations_add_up_per_file_and_merge_with_the_table(tmp_path) -> None:
    """Setup, call and teardown add up per file; files another part recorded stay in the table."""
    table = tmp_path / "durations.json"
    table.write_text('{"tests/other_runs.py": 42.0}')
    recorder = DurationRecorder(tmp_path, table)
    for nodeid, seconds in [("tests/a_runs.py::t1", 1.25), ("tests/a_runs.py::t2", 2.0), ("tests/b.py::t", 0.01)]:
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=seconds))  # type: ignore[arg-type]
    recorder.pytest_sessionfinish()
    assert measured_durations(table) == {"tests/a_runs.py": 3.2, "tests/b.py": 0.0, "tests/other_runs.py": 42.0}


def test_a_missing_or_broken_table_is_no_table(tmp_path) -> None:
    """Without a readable table every file is estimated."""
    assert measured_durations(tmp_path / "none.json") == {}
    (tmp_path / "bad.json").write_text("[1, 2")
    assert measured_durations(tmp_path / "bad.json") == {}
