"""The Locust glue: where Locust's events reach the pack's rooms.

`activate()` hooks the pack onto Locust's events; importing `flapping_pack` calls it.
Each Locust process has one `Pack`, composed of small objects with one job each:

- `RunClock` (pack/run_clock.py): phases and rounds; the load shape asks it every tick.
- `WorkerLink` / `MasterLink` (pack/worker_link.py): workers' counts, health and final reports.
- `LoadGeneratorWatch` (pack/load_generator_watch.py): the load generator's own limits.
- `ServerWatch` (pack/server_watch.py): the side monitor of the run.
- `RecoveryRun` (pack/recovery_run.py): the recovery probe once the flapping ends.
- `Judge` (pack/judge.py): the one verdict, live and final, its report and files; the views read it.
- `ChildServices` (pack/services.py): the bundled server and the fault proxy.
- `SigtermGuard` and `route_sigint` (pack/signals.py): stops that still end with a verdict.

The monitor and the verdict live on the master (or the local runner), never on a worker.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner

from monitors.checks import Verdict
from monitors.load_generator import GeneratorHealth
from monitors.sample import ResourceSample
from monitors.verdict_report import render_table
from pack.judge import Judge
from pack.load_generator_watch import LoadGeneratorWatch
from pack.options import (
    OptionError,
    add_pack_options,
    attach_file_contents,
    check_host_resolves,
    check_output_paths,
    config_from_options,
    validate_ws_host,
)
from pack.recovery_run import RecoveryRun
from pack.run_clock import RunClock
from pack.server_watch import ServerWatch
from pack.services import ChildServices, ServiceError
from pack.settings import PackConfig
from pack.settle_run import SettleRun
from pack.signals import SigtermGuard, route_sigint
from pack.worker_link import MasterLink, WorkerLink
from scenarios.flapping_user import flap_context, hooks_on_user_classes, script_class, users_asked
from scenarios.phases import FlapPhases
from scenarios.steady_user import SteadyUser
from scenarios.tracker import FlapCounts

logger = logging.getLogger("flapping_pack")

EXIT_BAD_CONFIG = 2


def fail_config(message: str) -> None:
    """Bad input: one clear line, exit 2, before any load is sent."""
    sys.stderr.write(f"flapping-pack: {message}\n")
    sys.stderr.flush()
    sys.exit(EXIT_BAD_CONFIG)


def _option(environment: Environment, name: str, default: Any = None) -> Any:
    return getattr(environment.parsed_options, name, default)


class Pack:
    """The pack in one Locust process: its config and its rooms, wired to Locust's events."""

    def __init__(self, environment: Environment, config: PackConfig, runner: Runner | None) -> None:
        self.environment = environment  # Locust's environment
        self.config = config  # validated options; replaced when the web UI changes them
        self.is_worker = isinstance(runner, WorkerRunner)  # a worker: no monitor, no verdict
        self.context = flap_context(environment)  # what this process's clients share
        self.services = ChildServices()  # the bundled server and the fault proxy
        self.sigterm = SigtermGuard()  # SIGTERM as Ctrl-C during a headless run
        self.master_link = MasterLink(runner) if isinstance(runner, MasterRunner) else None  # workers' counts
        self.worker_link = (
            WorkerLink(runner, self.progress, self.refused_by_master) if isinstance(runner, WorkerRunner) else None
        )
        workers_health = self.master_link.generator_health if self.master_link else GeneratorHealth
        self.generator = LoadGeneratorWatch(runner, workers_health)  # the load generator's own limits
        self.watch = ServerWatch(None, config.monitor.interval_s)  # the side monitor
        self.settles = SettleRun(self.watch, lambda: self.config.phases)  # each settle, until the server settled
        self.clock = RunClock(
            config.phases,
            cycles_per_user=lambda: self.config.flap.timing.cycles,
            counts=self.counts,
            users_asked=lambda: users_asked(environment),
            run_time_s=lambda: float(_option(environment, "run_time")) if _option(environment, "run_time") else None,
            steady_users=lambda: self.config.steady.users,
            settle=self.settles,
        )  # phases and rounds
        self.recovery = RecoveryRun(environment)  # the recovery probe
        self.judge = Judge(
            lambda: self.config,
            self.clock,
            self.watch,
            self.recovery,
            self.generator,
            self.counts,
            lambda: environment.stats,
            lambda: self.settles.outcomes,
        )  # the verdict
        self.clock.hold_settle_while(self.recovery.holds_settle)
        if self.master_link is not None:
            self.clock.hold_settle_while(self.master_link.holds_settle)
        self.clock.when_last_flapping_ends(self.start_recovery_probe)
        self.configure_clients()

    def counts(self) -> FlapCounts:
        """Connection counts of the whole run: local users, or every worker's on the master."""
        if self.master_link is not None:
            return self.master_link.counts()
        return self.context.tracker.snapshot()

    def progress(self) -> dict[str, Any]:
        """What a worker tells the master: its connection counts and its own health."""
        return {"counts": self.context.tracker.snapshot().to_dict(), "generator": self.generator.own.to_dict()}

    def configure_clients(self) -> None:
        """Give this process's clients the config's settings."""
        config = self.config
        self.context.configure(config.flap, config.client, config.steady)
        for user_class in self.environment.user_classes:
            if issubclass(user_class, SteadyUser):
                user_class.fixed_count = config.steady.users  # Locust reads the count from the class

    def refused_by_master(self, reason: str) -> None:
        """This worker's pack is not the master's: one line, and the worker quits with exit code 2."""
        sys.stderr.write(f"flapping-pack: the master refused this worker: {reason}\n")
        sys.stderr.flush()
        self.environment.process_exit_code = EXIT_BAD_CONFIG
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)

    def start_recovery_probe(self) -> None:
        """At the end of the last flapping: how soon does a stable client get a good round trip?"""
        host = self.environment.host
        if self.is_worker or not host:
            return
        self.recovery.start(
            self.context.client,
            script_class(self.environment),
            host,
            users_asked(self.environment),
            self.config.recovery_timeout_s,
        )

    def on_server_death(self, sample: ResourceSample) -> None:
        """The monitor saw the server die: stop the run (the verdict says why)."""
        logger.error("flapping-pack: the server is gone (process exited or metrics unreachable); stopping the run")
        self.clock.stop("server died")
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit if _option(self.environment, "headless", False) else runner.stop)

    def start_run(self) -> None:
        """A new run: fresh counts; on the master (or a local runner) a fresh clock, monitor and verdict."""
        self.context.reset()
        self.generator.start()
        if self.worker_link is not None:
            self.worker_link.start()
            return
        if self.master_link is not None:
            self.master_link.restart()
        self.settles.restart()
        self.clock.restart(self.config.phases)
        self.recovery.restart()
        self.judge.restart()
        self.watch.interval_s = self.config.monitor.interval_s
        self.watch.start(
            phase_of=lambda: self.clock.phase,
            cycles_of=lambda: self.counts().cycles_completed,
            round_of=lambda: self.clock.flap_round,
            on_death=self.on_server_death,
            lost_of=self.messages_lost,
        )

    def messages_lost(self) -> int | None:
        """Stream messages lost so far across all users and workers; None when the conversation has no stream."""
        if self.config.client.conversation.stream is None:
            return None
        return self.counts().continuity.messages_lost

    def finish(self) -> Verdict | None:
        """The final verdict, made once (none on a worker, or before any run started)."""
        if self.is_worker or self.watch.monitor is None:
            return None
        return self.judge.finish()

    def close(self) -> None:
        """Stop what the pack started (monitor, services, signal handler)."""
        self.sigterm.release()
        self.watch.stop()
        self.services.close()


def _pack(environment: Environment) -> Pack | None:
    return _PACKS.get(id(environment))


# --- event listeners -----------------------------------------------------------------


def _on_parser(parser: Any, **_kwargs: Any) -> None:
    add_pack_options(parser)


def _check_before_load(environment: Environment, config: PackConfig, runner: Runner | None) -> None:
    """Everything that must hold before any load is sent; OptionError says what does not."""
    problem = hooks_on_user_classes(environment.user_classes)
    if problem is not None:
        raise OptionError(problem)
    if environment.host:
        validate_ws_host(environment.host)
        if not isinstance(runner, WorkerRunner):
            check_host_resolves(environment.host)
    if isinstance(runner, WorkerRunner):  # workers write no files, and take -t from the master
        return
    check_output_paths(config)
    run_time = _option(environment, "run_time")
    if run_time:
        problem = config.phases.plan().run_time_problem(float(run_time))
        if problem is not None:
            raise OptionError(problem)


def _on_init(environment: Environment, runner: Runner | None = None, **kwargs: Any) -> None:
    try:
        config = config_from_options(environment.parsed_options)
        _check_before_load(environment, config, runner)
    except OptionError as error:
        fail_config(str(error))
        return
    pack = Pack(environment, config, runner)
    _PACKS[id(environment)] = pack
    route_sigint()
    if pack.is_worker:
        return
    try:
        attach_file_contents(environment.parsed_options)  # the workers get the files' content with the options
    except OptionError as error:
        fail_config(str(error))
        return
    try:
        host = pack.services.start(config, environment.host)
    except ServiceError as error:
        fail_config(str(error))
        return
    environment.host = host
    if environment.parsed_options is not None:
        environment.parsed_options.host = host
    pack.watch.targets = pack.services.targets
    if _option(environment, "headless", False):
        pack.sigterm.hold()
    if isinstance(environment.shape_class, FlapPhases):
        environment.shape_class.drive_by(pack.clock)
    from pack import html_report, web_ui  # flask only loads here, never on workers

    html_report.register(environment, pack.judge)
    if kwargs.get("web_ui") is not None:
        web_ui.install(environment, kwargs["web_ui"], pack.judge)


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    pack = _pack(environment)
    if pack is None:
        return
    if not environment.host and pack.services.default_host:
        environment.host = pack.services.default_host  # the web UI's host field was cleared: keep the bundled server
    bad_config: str | None = None
    if environment.parsed_options is not None:
        # Options may have been edited in the web UI since start-up; a worker gets
        # the master's options with its first spawn message, just before this event.
        try:
            if not pack.is_worker:
                attach_file_contents(environment.parsed_options)  # as they are now, for the workers
            config = config_from_options(environment.parsed_options)
            validate_ws_host(environment.host or "")
            if not pack.is_worker:
                check_output_paths(config)
            pack.config = config
        except OptionError as error:
            bad_config = str(error)
    pack.configure_clients()
    pack.start_run()
    if bad_config is not None and pack.is_worker:
        # E.g. a header the worker's pack cannot parse (the master's files come with its options).
        logger.error("flapping-pack: this worker cannot use the master's options (%s); it keeps its own", bad_config)
    elif bad_config is not None:
        # Reachable from the web UI only: the command line is checked before any load.
        logger.error("flapping-pack: %s; stopping the run", bad_config)
        pack.clock.stop("bad configuration")
        if environment.runner is not None:
            gevent.spawn(environment.runner.stop)


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    pack = _pack(environment)
    if pack is None:
        return
    pack.context.stop_feeder()  # its last session counted before the verdict or the worker's last report
    if pack.worker_link is not None:
        pack.worker_link.stop()
        return
    pack.sigterm.release()
    pack.watch.stop()
    headless = _option(environment, "headless", False)
    if pack.master_link is not None and headless:
        # A headless master fires test_stop before the workers' final reports arrive;
        # the verdict waits for them, at `quitting`.
        return
    verdict = pack.finish()
    if verdict is not None and not headless:
        logger.info("flapping-pack verdict:\n%s", render_table(verdict))


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    pack = _pack(environment)
    if pack is None or pack.is_worker:
        return
    verdict = pack.finish()
    if verdict is not None:
        environment.process_exit_code = verdict.exit_code
    pack.close()


def _on_quit(exit_code: int, **_kwargs: Any) -> None:
    for pack in _PACKS.values():
        if pack.judge.verdict is not None and not pack.is_worker:
            sys.stdout.write("\n" + render_table(pack.judge.verdict) + "\n")
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


_PACKS: dict[int, Pack] = {}  # the pack of each Locust environment of this process, by id
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
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
    events.quit.add_listener(_on_quit)
