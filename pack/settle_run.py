"""Each round's settle, held while the server still gives back: the run clock's settle judge.

The pure rule is `monitors.settle.SettleWatch`; this room feeds it the monitor's samples
as they come, sizes each series' flat window by how often its source really refreshes
(`ResourceMonitor.freshness`), and keeps every settle's outcome for the verdict.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from monitors.settle import SettleOutcome, SettleWatch
from pack.server_watch import ServerWatch
from scenarios.phase_plan import PhaseSettings

logger = logging.getLogger("flapping_pack")


class SettleRun:
    """The settles of the current run (a `scenarios.phase_plan.SettleJudge`)."""

    def __init__(
        self, watch: ServerWatch, settings: Callable[[], PhaseSettings], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._watch = watch  # the monitor, whose samples the settle reads
        self._settings = settings  # --settle-s and --settle-max-s now
        self._clock = clock  # the monitor's clock (samples carry its times)
        self._settle: SettleWatch | None = None  # the settle going on, if one is
        self._round = 0  # the round it follows
        self._fed = 0  # timeline samples already given to it
        self.outcomes: list[SettleOutcome] = []  # how each finished settle ended, in order

    def restart(self) -> None:
        """A new run: no settles yet."""
        self._settle = None
        self.outcomes = []

    def begin(self, flap_round: int, elapsed_s: float) -> None:
        """Round `flap_round`'s flapping ended: watch the server settle."""
        settings = self._settings()
        monitor = self._watch.monitor
        refresh_s = monitor.freshness().refresh_s() if monitor is not None else {}
        settle = SettleWatch(settings.settle_s, settings.settle_max_s, refresh_s=refresh_s)
        timeline = self._watch.timeline
        settle.start(self._clock(), timeline.baseline())
        self._settle, self._round, self._fed = settle, flap_round, len(timeline.samples)

    def over(self, elapsed_s: float) -> bool:
        """Whether the current settle is over; its outcome is kept (and logged) when it is."""
        settle = self._settle
        if settle is None:
            return True
        samples = self._watch.timeline.samples
        for sample in samples[self._fed :]:
            settle.add(sample)
        self._fed = len(samples)
        decision = settle.decision(self._clock())
        if not decision.done:
            return False
        self._settle = None
        outcome = decision.outcome(self._round, settle.max_s)
        self.outcomes.append(outcome)
        logger.info("flapping-pack: round %d %s", self._round, outcome.reason)
        return True
