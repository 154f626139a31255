"""The benchmark's timing statistics, from scripted per-cycle timestamps."""

from __future__ import annotations

from bench.run import percentile, timing_errors

HOLD, PAUSE = 100.0, 50.0


def _cycle(start: float, connect: float, hold: float, close: float, user: int = 0) -> list[float]:
    connected = start + connect
    return [start, connected, connected + hold, connected + hold + close, user]


def test_a_loop_on_absolute_deadlines_has_no_cycle_error() -> None:
    """Connects exactly one period apart: zero cycle error, whatever the handshake took."""
    cycles = [_cycle(k * 150.0, 3.0, HOLD, 1.0) for k in range(10)]
    found = timing_errors(cycles, HOLD, PAUSE)
    assert found["cycle_error_ms"] == {"p50": 0.0, "p99": 0.0}
    assert found["hold_error_ms"] == {"p50": 0.0, "p99": 0.0}


def test_a_loop_on_relative_sleeps_adds_its_connect_and_close_times() -> None:
    """Sleeping the pause after the close: each cycle is 3 + 1 ms longer than planned."""
    cycles, start = [], 0.0
    for _ in range(10):
        cycles.append(_cycle(start, 3.0, HOLD, 1.0))
        start = cycles[-1][3] + PAUSE
    assert timing_errors(cycles, HOLD, PAUSE)["cycle_error_ms"]["p99"] == 4.0


def test_hold_error_and_users_are_kept_apart() -> None:
    """A 2 ms late disconnect shows as hold error; two users' cycles are not mixed into one sequence."""
    cycles = [_cycle(k * 150.0, 1.0, HOLD + 2.0, 1.0, user=0) for k in range(5)]
    cycles += [_cycle(7.0 + k * 150.0, 1.0, HOLD, 1.0, user=1) for k in range(5)]
    found = timing_errors(cycles, HOLD, PAUSE)
    assert found["hold_error_ms"]["p99"] == 2.0
    assert found["cycle_error_ms"]["p99"] == 0.0


def test_percentile_is_nearest_rank() -> None:
    """p50 and p99 of 1..100, and nothing without values."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) is None
