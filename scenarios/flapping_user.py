"""The flapping Locust user: connect, hold, disconnect, pause, cycle after cycle.

Glue between the pure schedule and tracker and the WebSocket session: each action
becomes a Locust request event of type `WS` (a row in stats, CSV and HTML reports).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust import User, constant, task

from scenarios.schedule import FlapCycle, FlapSchedule, FlapTiming, disconnect_deadline, reconnect_deadline, user_rng
from scenarios.tracker import ConnectionTracker
from scenarios.ws_session import WebSocketSession, WsFailure, describe_failure

REQUEST_TYPE = "WS"
PARK_S = 3600.0  # how long a finished user sleeps before Locust runs its task again


@dataclass(frozen=True)
class FlapSettings:
    """What every flapping user of a run shares."""

    timing: FlapTiming = field(default_factory=FlapTiming)  # the schedule
    echo: bool = True  # echo one message per hold
    timeout_s: float = 5.0  # bound on every socket operation
    auth_token: str = field(default="", repr=False)  # secret
    auth_in: str = "header"  # "header" or "query"


class FlapContext:
    """Shared by the users of one Locust process: settings and the connection tracker."""

    def __init__(self, settings: FlapSettings | None = None) -> None:
        self.settings = settings or FlapSettings()  # replaced when the web UI changes options
        self.tracker = ConnectionTracker()  # counts of this process's users
        self._user_numbers = itertools.count()  # per-process user numbers, for seeds and tracking

    def next_user_number(self) -> int:
        """A new user's number within this process."""
        return next(self._user_numbers)

    def reset(self) -> None:
        """Start counting afresh for a new test run."""
        self.tracker.reset()
        self._user_numbers = itertools.count()


def flap_context(environment: Any) -> FlapContext:
    """The environment's flap context, created with defaults when the pack is not set up."""
    context = getattr(environment, "flap_context", None)
    if context is None:
        context = environment.flap_context = FlapContext()
    return context


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    gevent.sleep(delay if delay > 0 else 0)


class FlappingUser(User):
    """A WebSocket client on an unstable network: it flaps its connection on a schedule."""

    abstract = True
    wait_time = constant(0)  # the schedule owns all waiting

    def on_start(self) -> None:
        """Set up this user's schedule and counters."""
        context = flap_context(self.environment)
        self._settings = context.settings  # fixed for this user's life
        self._tracker = context.tracker  # where every step is counted
        self._number = context.next_user_number()  # this user's number in its process
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        rng = user_rng(self._settings.timing.seed, worker * 1_000_000 + self._number)
        self._cycles = iter(FlapSchedule(self._settings.timing, rng))  # the remaining planned cycles
        self._session: WebSocketSession | None = None  # the connection being held, if any
        self._connected_at = 0.0  # when the open connection's handshake completed
        self._finished = False  # all cycles done
        self._tracker.user_started(self._number)

    @task
    def flap(self) -> None:
        """Run every planned cycle, then park until the run's next phase stops this user."""
        try:
            for cycle in self._cycles:
                self._run_cycle(cycle)
        finally:
            # Reached on a normal end and when the user is killed mid-cycle (GreenletExit):
            # a killed user drops its socket at once instead of blocking shutdown.
            self._drop_open_connection()
        if not self._finished:
            self._finished = True
            self._tracker.user_finished(self._number)
        # A user that ended would be replaced by Locust while it still ramps up to -u
        # users, and the replacement would flap again: so a finished user parks instead.
        # The load shape sees every user finished and stops them all.
        gevent.sleep(PARK_S)

    def _run_cycle(self, cycle: FlapCycle) -> None:
        started = time.perf_counter()
        session = WebSocketSession(
            self.host or "",
            timeout_s=self._settings.timeout_s,
            auth_token=self._settings.auth_token,
            auth_in=self._settings.auth_in,
        )
        self._tracker.connect_attempted(self._number)
        try:
            session.connect()
        except WsFailure as failure:
            self._fire("connect", started, failure=failure)
            self._tracker.connect_failed(self._number)
            _sleep_until(time.perf_counter() + cycle.pause_s)
            self._tracker.cycle_completed(self._number, time.perf_counter() - started)
            return
        self._connected_at = time.perf_counter()
        self._session = session
        self._fire("connect", started)
        self._tracker.connect_succeeded(self._number)
        planned_disconnect = disconnect_deadline(self._connected_at, cycle)

        if self._settings.echo:
            self._echo(session, cycle)
        _sleep_until(planned_disconnect)

        close_started = time.perf_counter()
        if self._session is not None:  # the echo may have found the connection dead
            self._session = None
            self._tracker.disconnected(self._number, close_started - self._connected_at)
            try:
                session.close_clean()
                self._fire("close", close_started)
            except WsFailure as failure:
                self._fire("close", close_started, failure=failure)
        close_duration = time.perf_counter() - close_started

        _sleep_until(reconnect_deadline(planned_disconnect, close_duration, cycle))
        self._tracker.cycle_completed(self._number, time.perf_counter() - started)

    def _echo(self, session: WebSocketSession, cycle: FlapCycle) -> None:
        sent = time.perf_counter()
        try:
            length = session.echo(f"flap {self._number}:{cycle.index}")
        except WsFailure as failure:
            self._fire("echo", sent, failure=failure)
            self._drop_open_connection()
            return
        self._fire("echo", sent, length=length)

    def _drop_open_connection(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.abort()
            self._tracker.disconnected(self._number, time.perf_counter() - self._connected_at)

    def _fire(self, name: str, started: float, length: int = 0, failure: WsFailure | None = None) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=length,
            exception=failure,
            context={"generator_limit": True} if failure is not None and failure.generator_limit else {},
        )


__all__ = ["FlapContext", "FlapSettings", "FlappingUser", "describe_failure", "flap_context"]
