"""The load generator watches itself: its fds, the machine's ports and Locust's CPU warning.

Connect failures that the generator caused (no free local port, too many open files, a
saturated CPU) say nothing about the server: the verdict names them as the generator's.
Each Locust process samples its own health; a master adds its workers' (`MasterLink`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
from locust.runners import Runner
from locust.stats import RequestStats

from monitors.load_generator import GeneratorHealth, sample_generator

SAMPLE_INTERVAL_S = 0.5
GENERATOR_ADVICE = {  # what to do when a connect failed for the load generator's own reasons
    "no free local port": "widen net.ipv4.ip_local_port_range, lower the cycle rate or use more source addresses",
    "too many open files": "raise `ulimit -n` or spread users over more --processes",
}
GENERATOR_CPU_SATURATED = (
    "load generator CPU above 90% for seconds: its timings may be off and its timeouts its own; "
    "spread users over more --processes"
)
CONNECT_STAT = ("connect", "WS")  # (name, method) of the connect row in Locust's stats
GENERATOR_LIMIT_MARK = "load generator limit"  # how a failure caused by the generator's limits is worded


class LoadGeneratorWatch:
    """This process's own health, sampled on a greenlet, merged with the workers' on a master."""

    def __init__(self, runner: Runner | None, workers: Callable[[], GeneratorHealth] = GeneratorHealth) -> None:
        self._runner = runner  # Locust's runner: its CPU warnings
        self._workers = workers  # the workers' merged health (none outside a master)
        self.own = GeneratorHealth()  # this process's peaks
        self._greenlet: gevent.Greenlet | None = None  # the sampling loop

    def start(self) -> None:
        """Sample this process every SAMPLE_INTERVAL_S (once started, for the life of the process)."""
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._sample)

    def stop(self) -> None:
        """Stop sampling."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=False)

    def _sample(self) -> None:
        while True:
            self.own.add(sample_generator())
            gevent.sleep(SAMPLE_INTERVAL_S)

    def health(self) -> GeneratorHealth:
        """The peaks of this process and every worker."""
        return self.own.merged(self._workers())

    def cpu_saturated(self) -> bool:
        """Locust's own CPU warning (over 90 % across 10 s) in this process or any worker."""
        runner = self._runner
        return bool(
            runner is not None
            and (getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False))
        )

    def warnings(self) -> list[str]:
        """Sentences, with advice, for each limit the load generator came near (fds, ports, CPU)."""
        warnings = self.health().warnings()
        if self.cpu_saturated():
            warnings.append(GENERATOR_CPU_SATURATED)
        return warnings

    def limit_hit(self, stats: RequestStats) -> str | None:
        """Why connect failures were the generator's own fault, if they were."""
        for error in stats.errors.values():
            message = str(error.error)
            if GENERATOR_LIMIT_MARK in message:
                return f"{message}: {GENERATOR_ADVICE.get(message.split(' (')[0], 'see the generator section')}"
        connect = stats.entries.get(CONNECT_STAT)  # dict.get: stats.get would add an empty row
        if connect is not None and connect.num_failures:
            warnings = self.warnings()
            if warnings:
                return warnings[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        """The generator section of the verdict report."""
        return {**self.health().to_dict(), "cpu_saturated": self.cpu_saturated(), "warnings": self.warnings()}
