"""The connection tracker's counts and their merge across workers."""

from scenarios.tracker import ConnectionTracker, DurationStats, FlapCounts


def test_tracker_counts_per_user_and_in_total() -> None:
    """Every step is counted for its user and in the total."""
    tracker = ConnectionTracker()
    for user in (0, 1):
        tracker.user_started(user)
        tracker.connect_attempted(user)
        tracker.connect_succeeded(user)
    assert tracker.total.open_connections == 2
    tracker.disconnected(0, 0.101)
    tracker.cycle_completed(0, 0.152)
    tracker.connect_attempted(1)
    tracker.connect_failed(1)
    assert tracker.total.connect_attempts == 3
    assert tracker.total.connect_failures == 1
    assert tracker.total.open_connections == 1
    assert tracker.per_user[0].cycles_completed == 1
    assert tracker.per_user[1].cycles_completed == 0
    assert tracker.total.hold.mean_s == 0.101


def test_counts_merge_like_sums() -> None:
    """Two workers' snapshots add up, durations included."""
    a = FlapCounts(connect_attempts=5, cycles_completed=4, hold=DurationStats(2, 0.2, 0.09, 0.11))
    b = FlapCounts(connect_attempts=3, users_finished=1, hold=DurationStats(1, 0.12, 0.12, 0.12))
    merged = a.merged(b)
    assert merged.connect_attempts == 8
    assert merged.cycles_completed == 4
    assert merged.users_finished == 1
    assert merged.hold == DurationStats(3, 0.32, 0.09, 0.12)


def test_counts_survive_a_round_trip_through_a_dict() -> None:
    """Worker reports carry counts as plain dicts."""
    tracker = ConnectionTracker()
    tracker.connect_attempted(0)
    tracker.cycle_completed(0, 0.15)
    snapshot = tracker.snapshot()
    assert FlapCounts.from_dict(snapshot.to_dict()) == snapshot
    tracker.reset()
    assert tracker.total == FlapCounts()
