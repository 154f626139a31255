"""The connection tracker's counts and their merge across workers."""

from scenarios.tracker import ConnectionTracker, DurationStats, FlapCounts, UserNumbers


def test_tracker_counts_every_step_in_the_total() -> None:
    """Two users' steps add up in the process's totals."""
    tracker = ConnectionTracker()
    for _user in (0, 1):
        tracker.user_started()
        tracker.connect_attempted()
        tracker.connect_succeeded()
    assert tracker.total.open_connections == 2
    tracker.disconnected(0.101)
    tracker.cycle_completed(0.152)
    tracker.connect_attempted()
    tracker.connect_failed()
    assert tracker.total.users_started == 2
    assert tracker.total.connect_attempts == 3
    assert tracker.total.connect_failures == 1
    assert tracker.total.open_connections == 1
    assert tracker.total.cycles_completed == 1
    assert tracker.total.hold.mean_s == 0.101
    assert tracker.total.cycle.max_s == 0.152


def test_counts_merge_like_sums() -> None:
    """Two workers' snapshots add up, durations included."""
    a = FlapCounts(connect_attempts=5, cycles_completed=4, hold=DurationStats(2, 0.2, 0.09, 0.11))
    b = FlapCounts(connect_attempts=3, users_finished=1, hold=DurationStats(1, 0.12, 0.12, 0.12))
    merged = a.merged(b)
    assert merged.connect_attempts == 8
    assert merged.cycles_completed == 4
    assert merged.users_finished == 1
    assert merged.hold == DurationStats(3, 0.32, 0.09, 0.12)


def test_counts_survive_conversion_to_a_dict_and_back() -> None:
    """Worker reports carry counts as plain dicts."""
    tracker = ConnectionTracker()
    tracker.connect_attempted()
    tracker.cycle_completed(0.15)
    snapshot = tracker.snapshot()
    assert FlapCounts.from_dict(snapshot.to_dict()) == snapshot
    tracker.reset()
    assert tracker.total == FlapCounts()


def test_user_numbers_are_the_lowest_free_and_come_back_when_a_user_stops() -> None:
    """A user keeps its number while it runs; a stopped user's number goes to the next user."""
    numbers = UserNumbers()
    assert [numbers.take() for _ in range(3)] == [0, 1, 2]  # round 1
    for number in (2, 0, 1):  # round 1 stopped, in any order
        numbers.give_back(number)
    assert [numbers.take() for _ in range(4)] == [0, 1, 2, 3]  # round 2 reuses them, then a new one
