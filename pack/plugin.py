"""The Locust glue: options, the embedded server, the monitor, the verdict, via event hooks.

`activate()` hooks the pack onto Locust's events; the locustfile calls it once.
The monitor and the verdict live on the master (or the local runner), never on a
worker; workers send their connection counts with Locust's own worker reports.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, Runner, WorkerRunner
from locust.stats import StatsEntry

from monitors.checks import ClientTotals, Verdict, evaluate
from monitors.load_generator import GeneratorHealth, sample_generator
from monitors.monitor import ResourceMonitor
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample, SamplerError
from monitors.timeline import Timeline
from monitors.verdict_report import (
    render_table,
    verdict_to_dict,
    write_junit_xml,
    write_timeline_csv,
    write_verdict_json,
)
from pack import embedded, network, targets
from pack.options import (
    OptionError,
    PackConfig,
    add_pack_options,
    check_host_resolves,
    check_output_paths,
    client_settings,
    config_from_options,
    validate_ws_host,
)
from scenarios.flapping_user import FlapSettings, conversation_script, flap_context
from scenarios.phases import PHASE_DONE, PhasePlan
from scenarios.recovery import ConversationProbe, RecoveryResult, probe_recovery
from scenarios.steady_user import ROW_PREFIX as STEADY_ROW_PREFIX
from scenarios.steady_user import SteadyUser
from scenarios.tracker import FlapCounts
from scenarios.ws_events import REQUEST_TYPE, fire_ws_request
from scenarios.ws_session import WsFailure

logger = logging.getLogger("flapping_pack")

REPORT_KEY = "flapping_pack_counts"  # key of our counts in a worker's report to the master
PROGRESS_MESSAGE = "flapping_pack_progress"  # a worker's counts and health, sent as they change
PROGRESS_INTERVAL_S = 0.5
# Locust's headless master waits only 0.5 s for its workers' last stats before it quits, and
# a worker reports every 3 s: a busy worker's last seconds of rows were lost. Before the run
# ends, the master asks every worker for its report now and waits for them, this long at most.
FLUSH_MESSAGE = "flapping_pack_flush"
FLUSH_TIMEOUT_S = 5.0
FLUSH_POLL_S = 0.05  # how often a worker asked for its final report looks whether its users are gone
CONNECT_STAT = ("connect", "WS")  # (name, method) of the connect row in Locust's stats
STEADY_CONNECT = "steady-connect"  # ... of which the handshake's
GENERATOR_ADVICE = {  # what to do when a connect failed for the load generator's own reasons
    "no free local port": "widen net.ipv4.ip_local_port_range, lower the cycle rate or use more source addresses",
    "too many open files": "raise `ulimit -n` or spread users over more --processes",
}
GENERATOR_CPU_SATURATED = (
    "load generator CPU above 90% for seconds: its timings may be off and its timeouts its own; "
    "spread users over more --processes"
)
EXIT_BAD_CONFIG = 2


def fail_config(message: str) -> None:
    """Bad input: one clear line, exit 2, before any load is sent."""
    sys.stderr.write(f"flapping-pack: {message}\n")
    sys.stderr.flush()
    sys.exit(EXIT_BAD_CONFIG)


def flap_settings(config: PackConfig) -> FlapSettings:
    """What the users need from the config."""
    return FlapSettings(
        timing=config.timing,
        disconnect=config.disconnect,
        source_addresses=config.source_addresses,
        client=client_settings(config),
    )


class FlappingPack:
    """The pack's state in one Locust process: config, phases, monitor, counts, verdict."""

    def __init__(self, environment: Environment, config: PackConfig) -> None:
        self.environment = environment  # Locust's environment
        self.config = config  # validated options
        self.server: embedded.EmbeddedServer | None = None  # the bundled server, when we started it
        self.proxy: Any = None  # the fault proxy in front of the server, when network conditions are on
        self.default_host: str | None = None  # the URL the pack set up (bundled server, proxy)
        self.targets: targets.MonitorTargets | None = None  # what the monitor watches
        self.plan = PhasePlan(config.baseline_s, config.settle_s, rounds=config.rounds)  # the run's phases
        self.finished_before_round = 0  # users that finished in earlier rounds (counts are cumulative)
        self.phase = PHASE_BASELINE  # the current phase, tags every sample
        self.monitor: ResourceMonitor | None = None  # the polling greenlet of this run
        self.worker_counts: dict[str, FlapCounts] = {}  # latest counts from each worker
        self.worker_generators: dict[str, GeneratorHealth] = {}  # latest health of each worker process
        self.generator = GeneratorHealth()  # this process's own fds and the machine's ports
        self.verdict: Verdict | None = None  # the judgement, once made
        self.stop_reason: str | None = None  # why the run ended early, if it did
        self.sigterm_guard: Any = None  # our SIGTERM handler while Locust has none
        self.progress_greenlet: gevent.Greenlet | None = None  # a worker's progress reports
        self.recovery_greenlet: gevent.Greenlet | None = None  # the recovery probe, once flapping ends
        self.recovery: RecoveryResult | None = None  # what the probe found
        self.flush_waiting: set[str] | None = None  # workers whose final report has not come yet
        self.flush_deadline = 0.0  # perf_counter time after which the master stops waiting for them

    @property
    def is_worker(self) -> bool:
        """True in a worker process (no monitor, no verdict there)."""
        return isinstance(self.environment.runner, WorkerRunner)

    # --- counts ----------------------------------------------------------------------

    def counts(self) -> FlapCounts:
        """Connection counts of the whole run: local users, or every worker's on the master."""
        if isinstance(self.environment.runner, MasterRunner):
            total = FlapCounts()
            for counts in self.worker_counts.values():
                total = total.merged(counts)
            return total
        return flap_context(self.environment).tracker.snapshot()

    def users_done(self) -> bool:
        """True when every user asked for has finished this round's cycles (never with --flap-cycles 0).

        Each round spawns fresh users; the counts add up over the rounds, so a round's
        finished users are those counted since it began.
        """
        if self.config.timing.cycles == 0:
            return False
        target = int(getattr(self.environment.parsed_options, "num_users", 0) or 0)
        return target > 0 and self.counts().users_finished - self.finished_before_round >= target

    def advance_phase(self, elapsed_s: float) -> str:
        """Called by the load shape every tick: move the plan and remember the phase."""
        if self.stop_reason is not None:
            self.phase = PHASE_DONE
            return PHASE_DONE
        run_time = getattr(self.environment.parsed_options, "run_time", None)
        self.plan.run_time_s = float(run_time) if run_time else None
        flap_round = self.plan.flap_round
        phase = self.plan.advance(elapsed_s, self.users_done() if self.plan.phase == PHASE_FLAPPING else False)
        if self.plan.flap_round != flap_round:
            # A new round: users stopped at the end of the last one, and fresh ones flap anew.
            self.finished_before_round = self.counts().users_finished
        if self.phase == PHASE_FLAPPING and phase != PHASE_FLAPPING and self.plan.last_round:
            self._start_recovery_probe()
        probing = self.recovery_greenlet is not None and not self.recovery_greenlet.ready()
        within_run_time = self.plan.run_time_s is None or elapsed_s < self.plan.run_time_s
        if phase == PHASE_DONE and probing and within_run_time:
            # The probe is still trying (bounded by --recovery-timeout-s); -t is a hard limit:
            # Locust arms its own -t timer only after a shape ends, so the shape must end.
            phase = PHASE_SETTLE
        elif phase == PHASE_DONE and not self.workers_flushed():
            phase = PHASE_SETTLE
        if phase != self.phase:
            rounds = self.plan.rounds_fitting()
            of_round = f" (round {self.plan.flap_round} of {rounds})" if rounds > 1 and phase != PHASE_DONE else ""
            logger.info("flapping-pack: %s phase%s", phase, of_round)
        self.phase = phase
        return phase

    # --- run lifecycle ---------------------------------------------------------------

    def on_test_start(self) -> None:
        """A new run: fresh counts, fresh plan, and (on the master) a fresh monitor."""
        flap_context(self.environment).reset()
        if self.is_worker:
            return
        self.worker_counts.clear()
        self.worker_generators.clear()
        self.verdict = None
        self.stop_reason = None
        self.plan = PhasePlan(self.config.baseline_s, self.config.settle_s, rounds=self.config.rounds)
        self.finished_before_round = 0
        self.phase = PHASE_BASELINE
        self.recovery = None
        self.flush_waiting = None
        if self.recovery_greenlet is not None:
            self.recovery_greenlet.kill(block=False)
            self.recovery_greenlet = None
        samplers = self.targets.samplers if self.targets else []
        self.monitor = ResourceMonitor(
            samplers,
            self.config.monitor_interval_s,
            phase_of=lambda: self.phase,
            cycles_of=lambda: self.counts().cycles_completed,
            round_of=lambda: self.plan.flap_round,
            on_death=self._on_server_death,
            death_grace_s=self.targets.restart_grace_s if self.targets else 0.0,
        )
        if samplers:
            logger.info("flapping-pack: monitoring %s", self.monitor.describe())
        self.monitor.start()

    def _start_recovery_probe(self) -> None:
        """At the end of flapping: measure how soon a stable client gets a good round trip."""
        if self.is_worker or not self.environment.host:
            return
        ended_at = time.perf_counter()
        client = flap_context(self.environment).client
        host = self.environment.host

        def connection(timeout_s: float) -> ConversationProbe:
            return ConversationProbe(client, conversation_script(self.environment), host, timeout_s)

        def probe() -> None:
            result = probe_recovery(connection, ended_at, self.config.recovery_timeout_s, sleep=gevent.sleep)
            self.recovery = result
            failure = WsFailure(result.failure) if result.failure else None
            fire_ws_request(
                self.environment, "recovery", ended_at, 0, failure, response_time_ms=result.recovery_ms or 0.0
            )

        self.recovery_greenlet = gevent.spawn(probe)

    def workers_flushed(self) -> bool:
        """On a master: whether every worker's final stats have come (asked for on the first call).

        Each worker answers once its users are gone (`send_final_report`). Bounded by
        FLUSH_TIMEOUT_S; workers that did not answer by then are named in a warning. Workers
        Locust already counts as missing are not asked. Elsewhere there is nothing to wait for.
        """
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return True
        if self.flush_waiting is None:
            self.flush_waiting = {worker.id for worker in runner.clients.all if worker.state != STATE_MISSING}
            self.flush_deadline = time.perf_counter() + FLUSH_TIMEOUT_S
            for worker_id in self.flush_waiting:
                runner.send_message(FLUSH_MESSAGE, None, client_id=worker_id)
        if self.flush_waiting and time.perf_counter() >= self.flush_deadline:
            logger.warning(
                "flapping-pack: no final report within %g s from worker(s) %s; their last rows may be missing",
                FLUSH_TIMEOUT_S,
                ", ".join(sorted(self.flush_waiting)),
            )
            self.flush_waiting.clear()
        return not self.flush_waiting

    def send_final_report(self) -> None:
        """On a worker asked by the master: Locust's stats report, marked as the final one, once
        the users are gone (a user stopping within --stop-timeout, a steady user's goodbye, still
        make rows); within FLUSH_TIMEOUT_S, so the master still has it in time."""
        runner = self.environment.runner
        assert isinstance(runner, WorkerRunner)
        give_up = time.perf_counter() + FLUSH_TIMEOUT_S - 1
        while runner.user_count and time.perf_counter() < give_up:
            gevent.sleep(FLUSH_POLL_S)
        data: dict[str, Any] = {}
        self.environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        data[REPORT_KEY]["final"] = True
        runner.send_message("stats", data)

    def progress(self) -> dict[str, Any]:
        """What a worker tells the master: its connection counts and its own health."""
        return {
            "counts": flap_context(self.environment).tracker.snapshot().to_dict(),
            "generator": self.generator.to_dict(),
        }

    def receive_progress(self, worker_id: str, data: dict[str, Any]) -> None:
        """On the master: keep a worker's latest progress."""
        self.worker_counts[worker_id] = FlapCounts.from_dict(data["counts"])
        self.worker_generators[worker_id] = GeneratorHealth.from_dict(data["generator"])
        if data.get("final") and self.flush_waiting:
            self.flush_waiting.discard(worker_id)

    def generator_health(self) -> GeneratorHealth:
        """The load generator's peaks: this process and every worker."""
        health = self.generator
        for worker in self.worker_generators.values():
            health = health.merged(worker)
        return health

    def start_progress_reports(self) -> None:
        """Watch this process's own health; on a worker also send progress to the master.

        Locust's own worker reports come every 3 s; the master needs "all users are done"
        sooner than that to end the flapping phase on time.
        """
        if self.progress_greenlet is not None:
            return
        runner = self.environment.runner

        def report() -> None:
            last_counts: dict[str, Any] | None = None
            while True:
                self.generator.add(sample_generator())
                progress = self.progress()
                if self.is_worker and progress["counts"] != last_counts and runner is not None:
                    runner.send_message(PROGRESS_MESSAGE, progress)
                    last_counts = progress["counts"]
                gevent.sleep(PROGRESS_INTERVAL_S)

        self.progress_greenlet = gevent.spawn(report)

    def stop_progress_reports(self) -> None:
        """Stop the progress reports (a worker's final counts go with Locust's last report)."""
        greenlet, self.progress_greenlet = self.progress_greenlet, None
        if greenlet is not None:
            greenlet.kill(block=False)

    def _on_server_death(self, sample: ResourceSample) -> None:
        logger.error("flapping-pack: the server is gone (process exited or metrics unreachable); stopping the run")
        self.stop_reason = "server died"
        runner = self.environment.runner
        if runner is not None:
            headless = getattr(self.environment.parsed_options, "headless", False)
            gevent.spawn(runner.quit if headless else runner.stop)

    def client_totals(self) -> ClientTotals:
        """The client-side numbers the verdict needs, totalled across workers."""
        steady = self._steady_rounds()
        counts = self.counts()
        recovery = self.recovery
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
            generator_limited=self._generator_limit(),
            sessions_succeeded=counts.sessions_succeeded,
            sessions_failed=counts.sessions_failed,
        )

    def _steady_rounds(self) -> StatsEntry:
        """The steady users' timed steps (every `steady-` row but the connect) as one entry; creates no row."""
        stats = self.environment.stats
        merged = StatsEntry(stats, "steady", REQUEST_TYPE)
        for (name, method), entry in list(stats.entries.items()):
            if method == REQUEST_TYPE and name.startswith(STEADY_ROW_PREFIX) and name != STEADY_CONNECT:
                merged.extend(entry)
        return merged

    def report(self, verdict: Verdict) -> dict[str, Any]:
        """The verdict with its context, as written to --verdict-json and served to the web UI."""
        timeline = self.monitor.timeline if self.monitor is not None else Timeline()
        data = verdict_to_dict(verdict, timeline, self.client_totals())
        data["phase"] = self.phase
        data["connections"] = self.counts().to_dict()
        data["monitor"] = self.monitor.describe() if self.monitor is not None else "nothing"
        data["monitor_error"] = self.monitor.last_error if self.monitor is not None else None
        data["stop_reason"] = self.stop_reason
        health = self.generator_health()
        data["generator"] = {
            **health.to_dict(),
            "cpu_saturated": self._generator_cpu_saturated(),
            "warnings": self.generator_warnings(),
        }
        data["final"] = verdict is self.verdict
        return data

    def status(self) -> dict[str, Any]:
        """The live state for the web UI: the final verdict, or the checks as they stand now."""
        if self.verdict is not None:
            return self.report(self.verdict)
        timeline = self.monitor.timeline if self.monitor is not None else Timeline()
        live = evaluate(
            timeline, self.client_totals(), self.config.thresholds, interrupted=False, rounds=self.config.rounds
        )
        return self.report(live)

    def finish(self, interrupted: bool) -> Verdict | None:
        """Judge the run once: stop the monitor, evaluate, write the files."""
        if self.is_worker or self.monitor is None or self.verdict is not None:
            return self.verdict
        self.monitor.stop()
        if self.recovery_greenlet is not None and not self.recovery_greenlet.ready():
            self.recovery_greenlet.kill(block=True, timeout=2)  # an interrupted run: no measurement
        self.verdict = evaluate(
            self.monitor.timeline, self.client_totals(), self.config.thresholds, interrupted, rounds=self.config.rounds
        )
        for warning in self.generator_warnings():
            logger.warning("flapping-pack: %s", warning)
        self._write_outputs(self.report(self.verdict))
        return self.verdict

    def interrupted(self) -> bool:
        """Whether the run ended early: stopped before its end, or -t cut the planned cycles short.

        With --flap-cycles 0 the users flap until -t: that end is the plan, not an interruption.
        A server that died ends the run too, but that is the verdict's own failure.
        """
        if self.stop_reason is not None:
            return False
        cut_short = self.plan.flapping_cut_short and self.config.timing.cycles > 0
        return self.phase != PHASE_DONE or cut_short

    def _generator_cpu_saturated(self) -> bool:
        """Locust's own CPU warning (over 90 % across 10 s) in this process or any worker."""
        runner = self.environment.runner
        return bool(
            runner is not None
            and (getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False))
        )

    def generator_warnings(self) -> list[str]:
        """Sentences, with advice, for each limit the load generator came near (fds, ports, CPU)."""
        warnings = self.generator_health().warnings()
        if self._generator_cpu_saturated():
            warnings.append(GENERATOR_CPU_SATURATED)
        return warnings

    def _generator_limit(self) -> str | None:
        """Why connect failures were the generator's own fault, if they were."""
        for error in self.environment.stats.errors.values():
            message = str(error.error)
            if "load generator limit" in message:
                return f"{message}: {GENERATOR_ADVICE.get(message.split(' (')[0], 'see the generator section')}"
        connect = self.environment.stats.entries.get(CONNECT_STAT)  # dict.get: stats.get would add an empty row
        if connect is not None and connect.num_failures:
            warnings = self.generator_warnings()
            if warnings:
                return warnings[0]
        return None

    def _write_outputs(self, data: dict[str, Any]) -> None:
        assert self.monitor is not None and self.verdict is not None
        writes = (
            (self.config.verdict_json, lambda path: write_verdict_json(path, data)),
            (self.config.junit_xml, lambda path: write_junit_xml(path, self.verdict)),
            (self.config.resource_csv, lambda path: write_timeline_csv(path, self.monitor.timeline)),
        )
        for path, write in writes:
            if not path:
                continue
            try:
                write(path)
            except OSError as error:
                logger.error("flapping-pack: could not write %s: %s", path, error.strerror)

    def release_sigterm(self) -> None:
        """Hand SIGTERM back to Locust."""
        guard, self.sigterm_guard = self.sigterm_guard, None
        if guard is not None:
            guard.cancel()

    def close(self) -> None:
        """Stop what the pack started (monitor, bundled server)."""
        self.release_sigterm()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.monitor is not None:
            self.monitor.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None


def _pack(environment: Environment) -> FlappingPack | None:
    return getattr(environment, "flapping_pack", None)


# --- event listeners -----------------------------------------------------------------


def _on_parser(parser: Any, **_kwargs: Any) -> None:
    add_pack_options(parser)


def _check_run_time(environment: Environment, config: PackConfig) -> None:
    """A -t that leaves no time for the flapping between baseline and settle is bad configuration."""
    run_time = getattr(environment.parsed_options, "run_time", None)
    if not run_time:
        return
    problem = PhasePlan(config.baseline_s, config.settle_s).run_time_problem(float(run_time))
    if problem is not None:
        raise OptionError(problem)


def _on_init(environment: Environment, runner: Runner | None = None, **_kwargs: Any) -> None:
    try:
        config = config_from_options(environment.parsed_options)
        if environment.host:
            validate_ws_host(environment.host)
            if not isinstance(runner, WorkerRunner):
                check_host_resolves(environment.host)
        if not isinstance(runner, WorkerRunner):  # workers write no files, and take -t from the master
            check_output_paths(config)
            _check_run_time(environment, config)
    except OptionError as error:
        fail_config(str(error))
        return
    pack = FlappingPack(environment, config)
    environment.flapping_pack = pack  # type: ignore[attr-defined]
    flap_context(environment).settings = flap_settings(config)
    _route_sigint()
    if isinstance(runner, WorkerRunner):
        return
    if not environment.host:
        try:
            pack.server = embedded.start(config)
        except embedded.EmbeddedServerError as error:
            fail_config(str(error))
        assert pack.server is not None
        environment.host = pack.server.url
        if environment.parsed_options is not None:
            environment.parsed_options.host = pack.server.url
        logger.info("flapping-pack: started the bundled reference server (%s)", embedded.describe(pack.server))
    try:
        pack.targets = targets.resolve(config, environment.host, pack.server)
    except SamplerError as error:
        pack.close()
        fail_config(str(error))
    if network.wanted(config):
        try:
            pack.proxy, environment.host = network.start(config, environment.host)
        except (OptionError, network.NetworkConditionsError) as error:
            pack.close()
            fail_config(str(error))
        if environment.parsed_options is not None:
            environment.parsed_options.host = environment.host
        logger.info("flapping-pack: network conditions through a fault proxy: %s", network.describe(config))
    if pack.server is not None or pack.proxy is not None:
        pack.default_host = environment.host
    _guard_sigterm(pack)
    assert pack.targets is not None  # resolved above, or the run ended with a config error
    for note in pack.targets.notes:
        logger.info("flapping-pack: monitor target: %s", note)
    if not pack.targets.samplers:
        logger.warning(
            "flapping-pack: no server monitor (give --server-pid, --server-port or --server-metrics-url): "
            "resource checks will be skipped"
        )
    from pack import html_report, web_ui  # flask only loads here, never on workers

    html_report.register(environment)
    if _kwargs.get("web_ui") is not None:
        web_ui.install(environment, _kwargs["web_ui"])


def _interrupt_main_greenlet() -> None:
    """Raise KeyboardInterrupt in the main greenlet (Locust's way to stop), whatever greenlet runs.

    For SIGTERM while the headless shape runs: Locust installs its SIGTERM handler only
    after a headless shape test returns, so until then SIGTERM would kill the process
    without a verdict or cleanup. For SIGINT: see `_route_sigint`.
    """
    gevent.get_hub().parent.throw(KeyboardInterrupt())


_sigint_route: Any = None  # our SIGINT handler, kept for the life of the process


def _route_sigint() -> None:
    """Deliver Ctrl-C to the main greenlet, where Locust expects it, in every Locust process.

    Python raises KeyboardInterrupt in whichever greenlet runs when the signal comes: with
    hundreds of busy users, usually a user, which dies with a traceback (gevent passes the
    interrupt on, so the run still stops). A terminal's Ctrl-C also reaches the workers of
    --processes, where a user's traceback also sets exit code 2.
    """
    global _sigint_route
    if _sigint_route is None:
        _sigint_route = gevent.signal_handler(signal.SIGINT, _interrupt_main_greenlet)


def _guard_sigterm(pack: FlappingPack) -> None:
    if getattr(pack.environment.parsed_options, "headless", False):
        pack.sigterm_guard = gevent.signal_handler(signal.SIGTERM, _interrupt_main_greenlet)


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    pack = _pack(environment)
    if pack is None:
        return
    if not environment.host and pack.default_host:
        environment.host = pack.default_host  # the web UI's host field was cleared: keep the bundled server
    bad_config: str | None = None
    if environment.parsed_options is not None:
        # Options may have been edited in the web UI since start-up; a worker gets
        # the master's options with its first spawn message, just before this event.
        try:
            pack.config = config_from_options(environment.parsed_options)
            validate_ws_host(environment.host or "")
            if not pack.is_worker:
                check_output_paths(pack.config)
        except OptionError as error:
            bad_config = str(error)
    flap_context(environment).settings = flap_settings(pack.config)
    for user_class in environment.user_classes:
        if issubclass(user_class, SteadyUser):
            user_class.fixed_count = pack.config.steady_users
            user_class.interval_s = pack.config.steady_interval_ms / 1000.0
    pack.on_test_start()
    pack.start_progress_reports()
    if bad_config is not None and pack.is_worker:
        # E.g. the master's --ws-conversation path does not exist on this worker's host.
        logger.error("flapping-pack: this worker cannot use the master's options (%s); it keeps its own", bad_config)
    elif bad_config is not None:
        # Reachable from the web UI only: the command line is checked before any load.
        logger.error("flapping-pack: %s; stopping the run", bad_config)
        pack.stop_reason = "bad configuration"
        if environment.runner is not None:
            gevent.spawn(environment.runner.stop)


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    pack = _pack(environment)
    if pack is None:
        return
    pack.stop_progress_reports()
    if pack.is_worker:
        return
    pack.release_sigterm()
    if pack.monitor is not None:
        pack.monitor.stop()
    if isinstance(environment.runner, MasterRunner) and getattr(environment.parsed_options, "headless", False):
        # A headless master fires test_stop before the workers' final reports arrive;
        # the verdict waits for them, at `quitting`.
        return
    verdict = pack.finish(interrupted=pack.interrupted())
    if verdict is not None and not getattr(environment.parsed_options, "headless", False):
        logger.info("flapping-pack verdict:\n%s", render_table(verdict))


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    pack = _pack(environment)
    if pack is None or pack.is_worker:
        return
    verdict = pack.finish(interrupted=pack.interrupted())
    if verdict is not None:
        environment.process_exit_code = verdict.exit_code
    pack.close()


def _on_quit(exit_code: int, **_kwargs: Any) -> None:
    for pack in list(_ACTIVE):
        if pack.verdict is not None and not pack.is_worker:
            sys.stdout.write("\n" + render_table(pack.verdict) + "\n")
            sys.stdout.flush()
    _stop_locust_csv_writer()


def _stop_locust_csv_writer() -> None:
    """Workaround for Locust: its --csv writer greenlet outlives the CSV files.

    Locust closes the CSV files right after this event but leaves the writer greenlet
    running; when anything yields during interpreter exit (e.g. --processes waiting for
    its workers), the writer wakes up and prints a traceback about a closed file. Locust
    keeps no reference to that greenlet, so it is found by its function's name.
    """
    for obj in gc.get_objects():
        if isinstance(obj, gevent.Greenlet) and getattr(getattr(obj, "_run", None), "__name__", "") == "stats_writer":
            obj.kill(block=False)


_ACTIVE: list[FlappingPack] = []
_activated = False


def activate() -> None:
    """Hook the pack onto Locust's events (idempotent)."""
    global _activated
    if _activated:
        return
    _activated = True
    # Before any user is spawned: gevent otherwise keeps each greenlet's spawning greenlet,
    # spawn-tree locals and a captured spawning stack, memory per user for the whole run.
    gevent.config.track_greenlet_tree = False
    events.init_command_line_parser.add_listener(_on_parser)

    @events.init.add_listener
    def on_init(environment: Environment, runner: Runner | None = None, **kwargs: Any) -> None:
        _on_init(environment, runner, **kwargs)
        pack = _pack(environment)
        if pack is not None:
            _ACTIVE.append(pack)
        if isinstance(runner, WorkerRunner):

            @events.report_to_master.add_listener
            def report_counts(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
                if pack is not None:
                    data[REPORT_KEY] = pack.progress()

            def flush(environment: Environment, msg: Any, **_kw: Any) -> None:
                if pack is not None:
                    pack.send_final_report()

            runner.register_message(FLUSH_MESSAGE, flush, concurrent=True)  # it waits for the users

        elif isinstance(runner, MasterRunner):

            @events.worker_report.add_listener
            def receive_counts(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
                if pack is not None and REPORT_KEY in data:
                    pack.receive_progress(client_id, data[REPORT_KEY])

            def receive_progress(environment: Environment, msg: Any, **_kw: Any) -> None:
                if pack is not None:
                    pack.receive_progress(msg.node_id, msg.data)

            runner.register_message(PROGRESS_MESSAGE, receive_progress)

    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
    events.quit.add_listener(_on_quit)
