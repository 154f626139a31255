"""How often a costly reading may run so that it takes at most a share of a core."""

from __future__ import annotations


class CpuBudget:
    """Paces a reading whose CPU cost grows with what it reads (the kernel's socket table).

    After a reading that started at `started_s` and cost `cost_s` seconds of CPU, the next
    one is due `cost_s / share` later: at most `share` of a core over time, however large the
    table grows. A cheap reading is due again at once; the first one is always due.
    """

    __slots__ = ("share", "_next_s")

    def __init__(self, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share  # the most of one core the readings may take
        self._next_s = float("-inf")  # when the next reading is due, on the caller's clock

    def due(self, now_s: float) -> bool:
        """Whether a reading may run at `now_s`."""
        return now_s >= self._next_s

    def spent(self, started_s: float, cost_s: float) -> None:
        """A reading started at `started_s` cost `cost_s` seconds of CPU."""
        self._next_s = started_s + max(cost_s, 0.0) / self.share
