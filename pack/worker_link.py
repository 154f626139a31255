"""Master and worker links: each worker's counts and health reach the master, and its last report in time.

A worker sends its connection counts and its load generator's health as they change
(`WorkerLink`); the master keeps each worker's latest and adds them up (`MasterLink`).
Locust's headless master waits only 0.5 s for its workers' last stats before it quits,
and a worker reports every 3 s: so before the run ends, the master asks every worker for
its final report and holds the run in its settle until each has answered (bounded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from monitors.load_generator import GeneratorHealth
from pack import version
from scenarios.tracker import FlapCounts

logger = logging.getLogger("flapping_pack")

REPORT_KEY = "flapping_pack_counts"  # key of our counts in a worker's report to the master
PROGRESS_MESSAGE = "flapping_pack_progress"  # a worker's counts and health, sent as they change
PROGRESS_INTERVAL_S = 0.5
FLUSH_MESSAGE = "flapping_pack_flush"  # the master asks a worker for its final report
FLUSH_TIMEOUT_S = 5.0  # how long the master waits for the final reports
FLUSH_POLL_S = 0.05  # how often a worker asked for its final report looks whether its users are gone
HELLO_MESSAGE = "flapping_pack_hello"  # a worker's pack version, sent as it connects
REFUSED_MESSAGE = "flapping_pack_refused"  # the master refuses a worker whose pack version differs

# progress() -> {"counts": FlapCounts.to_dict(), "generator": GeneratorHealth.to_dict()}
Progress = Callable[[], dict[str, Any]]


class WorkerLink:
    """On a worker: progress to the master as it changes, and the final report when asked."""

    def __init__(self, runner: WorkerRunner, progress: Progress, on_refused: Callable[[str], None]) -> None:
        self._runner = runner  # Locust's worker runner
        self._progress = progress  # this worker's counts and health now
        self._on_refused = on_refused  # the master refused this worker's pack: the one line why
        self._greenlet: gevent.Greenlet | None = None  # the progress loop, while a run goes on
        runner.environment.events.report_to_master.add_listener(self._add_to_report)
        runner.register_message(FLUSH_MESSAGE, self._on_flush, concurrent=True)  # it waits for the users
        runner.register_message(REFUSED_MESSAGE, self._on_refused_message)
        runner.send_message(HELLO_MESSAGE, {"version": version.VERSION})  # connected: Locust's runner did that

    def _on_refused_message(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self._on_refused(str(msg.data.get("reason", "refused by the master")))

    def start(self) -> None:
        """Send progress as it changes (Locust's own reports come every 3 s: too late to end a phase on time)."""
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._send_progress)

    def stop(self) -> None:
        """Stop the progress (the final counts go with Locust's last report)."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=False)

    def _send_progress(self) -> None:
        last_counts: dict[str, Any] | None = None
        while True:
            progress = self._progress()
            if progress["counts"] != last_counts:
                self._runner.send_message(PROGRESS_MESSAGE, progress)
                last_counts = progress["counts"]
            gevent.sleep(PROGRESS_INTERVAL_S)

    def _add_to_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        data[REPORT_KEY] = self._progress()

    def _on_flush(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self.send_final_report()

    def send_final_report(self) -> None:
        """Locust's stats report, marked final, once the users are gone (within FLUSH_TIMEOUT_S).

        A user stopping within --stop-timeout, or a steady user's goodbye, still makes rows.
        """
        runner = self._runner
        give_up = time.perf_counter() + FLUSH_TIMEOUT_S - 1
        while runner.user_count and time.perf_counter() < give_up:
            gevent.sleep(FLUSH_POLL_S)
        data: dict[str, Any] = {}
        runner.environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        data[REPORT_KEY]["final"] = True
        runner.send_message("stats", data)


class MasterLink:
    """On a master: every worker's latest counts and health, and the wait for their final reports."""

    def __init__(self, runner: MasterRunner) -> None:
        self._runner = runner  # Locust's master runner
        self._counts: dict[str, FlapCounts] = {}  # latest counts from each worker
        self._generators: dict[str, GeneratorHealth] = {}  # latest health of each worker process
        self._flush_waiting: set[str] | None = None  # workers whose final report has not come yet
        self._flush_deadline = 0.0  # perf_counter time after which the master stops waiting for them
        runner.environment.events.worker_report.add_listener(self._on_report)
        runner.register_message(PROGRESS_MESSAGE, self._on_progress)
        runner.register_message(HELLO_MESSAGE, self._on_hello)

    def _on_hello(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        """A worker's pack version: one that differs from the master's is refused and forgotten."""
        data = msg.data if isinstance(msg.data, dict) else {}
        reason = version.worker_refusal(version.VERSION, data.get("version"))
        if reason is None:
            return
        logger.error("flapping-pack: refused worker %s: %s", msg.node_id, reason)
        self._runner.send_message(REFUSED_MESSAGE, {"reason": reason}, client_id=msg.node_id)
        if msg.node_id in self._runner.clients:  # no users go to it; --expect-workers waits for another
            del self._runner.clients[msg.node_id]

    def restart(self) -> None:
        """A new run: forget the last one's workers."""
        self._counts.clear()
        self._generators.clear()
        self._flush_waiting = None

    def counts(self) -> FlapCounts:
        """Every worker's counts, added up."""
        total = FlapCounts()
        for counts in self._counts.values():
            total = total.merged(counts)
        return total

    def generator_health(self) -> GeneratorHealth:
        """The peaks of every worker's load generator."""
        health = GeneratorHealth()
        for worker in self._generators.values():
            health = health.merged(worker)
        return health

    def receive(self, worker_id: str, data: dict[str, Any]) -> None:
        """Keep a worker's latest progress."""
        self._counts[worker_id] = FlapCounts.from_dict(data["counts"])
        self._generators[worker_id] = GeneratorHealth.from_dict(data["generator"])
        if data.get("final") and self._flush_waiting:
            self._flush_waiting.discard(worker_id)

    def _on_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        if REPORT_KEY in data:
            self.receive(client_id, data[REPORT_KEY])

    def _on_progress(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self.receive(msg.node_id, msg.data)

    def workers_flushed(self) -> bool:
        """Whether every worker's final stats have come (asked for on the first call).

        Bounded by FLUSH_TIMEOUT_S; workers that did not answer by then are named in a
        warning. Workers Locust already counts as missing are not asked.
        """
        runner = self._runner
        if self._flush_waiting is None:
            self._flush_waiting = {worker.id for worker in runner.clients.all if worker.state != STATE_MISSING}
            self._flush_deadline = time.perf_counter() + FLUSH_TIMEOUT_S
            for worker_id in self._flush_waiting:
                runner.send_message(FLUSH_MESSAGE, None, client_id=worker_id)
        if self._flush_waiting and time.perf_counter() >= self._flush_deadline:
            logger.warning(
                "flapping-pack: no final report within %g s from worker(s) %s; their last rows may be missing",
                FLUSH_TIMEOUT_S,
                ", ".join(sorted(self._flush_waiting)),
            )
            self._flush_waiting.clear()
        return not self._flush_waiting

    def holds_settle(self, elapsed_s: float, within_run_time: bool) -> bool:
        """The run clock's hold: stay in the settle until the final reports are in."""
        return not self.workers_flushed()
