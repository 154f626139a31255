"""The judge: the run's one verdict, live while it runs and final at its end, and the files it writes.

The web UI tab, the HTML report and the files all read the verdict here (`RunView`), so
the checks shown while a run goes on are the ones that make its final verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from locust.stats import RequestStats, StatsEntry

from monitors.checks import ClientTotals, Verdict, evaluate
from monitors.settle import SettleOutcome
from monitors.timeline import Timeline
from monitors.verdict_report import verdict_to_dict, write_junit_xml, write_timeline_csv, write_verdict_json
from pack.load_generator_watch import LoadGeneratorWatch
from pack.recovery_run import RecoveryRun
from pack.run_clock import RunClock
from pack.server_watch import ServerWatch
from pack.settings import PackConfig
from scenarios.steady_user import ROW_PREFIX as STEADY_ROW_PREFIX
from scenarios.tracker import FlapCounts
from scenarios.ws_events import REQUEST_TYPE

logger = logging.getLogger("flapping_pack")

STEADY_CONNECT = STEADY_ROW_PREFIX + "connect"  # the steady users' handshake row: not a timed exchange


class RunView(Protocol):
    """What the views (web UI tab, HTML report) read of a run: nothing else."""

    @property
    def verdict(self) -> Verdict | None:
        """The final verdict, once made."""

    @property
    def phase(self) -> str:
        """The phase the run is in."""

    @property
    def timeline(self) -> Timeline:
        """The run's resource samples."""

    def live_verdict(self) -> Verdict:
        """The final verdict, or the checks as they stand now."""

    def status(self) -> dict[str, Any]:
        """The verdict report of `live_verdict()`."""

    def final_report(self) -> dict[str, Any] | None:
        """The final verdict's report, or None before it is made."""


class Judge:
    """Judges the run: the live checks, the final verdict, the report and the files."""

    def __init__(
        self,
        config: Callable[[], PackConfig],
        clock: RunClock,
        watch: ServerWatch,
        recovery: RecoveryRun,
        generator: LoadGeneratorWatch,
        counts: Callable[[], FlapCounts],
        stats: Callable[[], RequestStats],
        settles: Callable[[], Sequence[SettleOutcome]] = tuple,
    ) -> None:
        self._config = config  # the run's options now
        self._clock = clock  # phases, rounds, why the run stopped
        self._watch = watch  # the server's resources
        self._recovery = recovery  # the recovery probe's result
        self._generator = generator  # the load generator's own health
        self._counts = counts  # the run's connection counts
        self._stats = stats  # Locust's request stats (steady users' rows, failures)
        self._settles = settles  # how each round's settle ended
        self.verdict: Verdict | None = None  # the final judgement, once made

    def restart(self) -> None:
        """A new run: no verdict yet."""
        self.verdict = None

    # --- RunView ----------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        """The phase the run is in."""
        return self._clock.phase

    @property
    def timeline(self) -> Timeline:
        """The run's resource samples."""
        return self._watch.timeline

    def live_verdict(self) -> Verdict:
        """The final verdict, or the checks as they stand now (one rule for the tab and the report)."""
        if self.verdict is not None:
            return self.verdict
        return self._evaluate(interrupted=False)

    def status(self) -> dict[str, Any]:
        """The report of `live_verdict()`, for the web UI."""
        return self.report(self.live_verdict())

    def final_report(self) -> dict[str, Any] | None:
        """The final verdict's report, or None before it is made."""
        return self.report(self.verdict) if self.verdict is not None else None

    # --- judging ----------------------------------------------------------------------------

    def _evaluate(self, interrupted: bool) -> Verdict:
        config = self._config()
        return evaluate(
            self._watch.timeline,
            self.client_totals(),
            config.thresholds,
            interrupted,
            rounds=config.phases.rounds,
            settles=self._settles(),
        )

    def client_totals(self) -> ClientTotals:
        """The client-side numbers the verdict needs, totalled across workers."""
        steady = self._steady_exchanges()
        counts = self._counts()
        recovery = self._recovery.result
        return ClientTotals(
            # Connects that ended one way or the other: one a stop cut short counts neither way.
            connect_attempts=counts.sessions_established + counts.connect_failures,
            connect_failures=counts.connect_failures,
            cycles_completed=counts.cycles_completed,
            users=counts.users_started,
            recovery_ms=recovery.recovery_ms if recovery else None,
            recovery_failure=recovery.failure if recovery else None,
            steady_p95_ms=steady.get_response_time_percentile(0.95) if steady.num_requests else None,
            steady_echoes=steady.num_requests,
            generator_limited=self._generator.limit_hit(self._stats()),
            sessions_succeeded=counts.sessions_succeeded,
            sessions_failed=counts.sessions_failed,
            continuity=counts.continuity if self._config().client.conversation.stream is not None else None,
        )

    def _steady_exchanges(self) -> StatsEntry:
        """The steady users' timed steps (every `steady-` row but the connect) as one entry; creates no row."""
        stats = self._stats()
        merged = StatsEntry(stats, "steady", REQUEST_TYPE)
        for (name, method), entry in list(stats.entries.items()):
            if method == REQUEST_TYPE and name.startswith(STEADY_ROW_PREFIX) and name != STEADY_CONNECT:
                merged.extend(entry)
        return merged

    def report(self, verdict: Verdict) -> dict[str, Any]:
        """The verdict with its context, as written to --verdict-json and served to the web UI."""
        data = verdict_to_dict(verdict, self._watch.timeline, self.client_totals())
        data["phase"] = self._clock.phase
        data["connections"] = self._counts().to_dict()
        data["monitor"] = {
            "watching": self._watch.describe(),  # what the monitor watches, in words
            "freshness": self._watch.freshness_report(),  # each series' refresh, and the suspect ones
            "error": self._watch.last_error,  # the samplers' last error, if any
        }
        data["stop_reason"] = self._clock.stop_reason
        data["generator"] = self._generator.to_dict()
        data["final"] = verdict is self.verdict
        return data

    def finish(self) -> Verdict:
        """Judge the run once: stop the monitor and the probe, evaluate, write the files."""
        if self.verdict is not None:
            return self.verdict
        self._watch.stop()
        self._recovery.stop()
        self.verdict = self._evaluate(self._clock.interrupted())
        for warning in self._generator.warnings():
            logger.warning("flapping-pack: %s", warning)
        self._write_outputs(self.report(self.verdict))
        return self.verdict

    def _write_outputs(self, data: dict[str, Any]) -> None:
        verdict, timeline, outputs = self.verdict, self._watch.timeline, self._config().outputs
        assert verdict is not None
        writes = (
            (outputs.verdict_json, lambda path: write_verdict_json(path, data)),
            (outputs.junit_xml, lambda path: write_junit_xml(path, verdict)),
            (outputs.resource_csv, lambda path: write_timeline_csv(path, timeline)),
        )
        for path, write in writes:
            if not path:
                continue
            try:
                write(path)
            except OSError as error:
                logger.error("flapping-pack: could not write %s: %s", path, error.strerror)
