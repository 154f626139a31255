"""The side monitor's life: one `ResourceMonitor` per run, polling the server's resources on a greenlet.

Made fresh at each run's start with what it tags samples with (phase, round, cycles), and
told what to do when the server dies; the judge reads its timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from monitors.monitor import ResourceMonitor
from monitors.sample import ResourceSample
from monitors.timeline import Timeline
from pack.targets import MonitorTargets

logger = logging.getLogger("flapping_pack")


class ServerWatch:
    """The monitor of the current run, if one has started."""

    def __init__(self, targets: MonitorTargets | None, interval_s: float) -> None:
        self.targets = targets  # what to watch (samplers), resolved at start-up
        self.interval_s = interval_s  # the sampling period
        self.monitor: ResourceMonitor | None = None  # the current run's monitor

    def start(
        self,
        phase_of: Callable[[], str],
        cycles_of: Callable[[], int],
        round_of: Callable[[], int],
        on_death: Callable[[ResourceSample], None],
        lost_of: Callable[[], int | None] = lambda: None,
    ) -> None:
        """A new run: a fresh monitor, polling now; `lost_of` tags samples with the stream messages lost so far."""
        if self.monitor is not None:
            self.monitor.stop()
        targets = self.targets
        self.monitor = ResourceMonitor(
            targets.samplers if targets else [],
            self.interval_s,
            phase_of=phase_of,
            cycles_of=cycles_of,
            round_of=round_of,
            lost_of=lost_of,
            on_death=on_death,
            death_grace_s=targets.restart_grace_s if targets else 0.0,
        )
        if self.monitor.samplers:
            logger.info("flapping-pack: monitoring %s", self.monitor.describe())
        self.monitor.start()

    def stop(self) -> None:
        """Stop polling (the timeline stays)."""
        if self.monitor is not None:
            self.monitor.stop()

    @property
    def timeline(self) -> Timeline:
        """The current run's samples (empty before the first run)."""
        return self.monitor.timeline if self.monitor is not None else Timeline()

    def describe(self) -> str:
        """What is watched, in one line."""
        return self.monitor.describe() if self.monitor is not None else "nothing"

    def freshness_report(self) -> dict[str, Any]:
        """How often each series really changed during flapping, and the gauges that never did."""
        return self.monitor.freshness().to_dict() if self.monitor is not None else {}

    @property
    def last_error(self) -> str | None:
        """The latest sampler failure."""
        return self.monitor.last_error if self.monitor is not None else None
