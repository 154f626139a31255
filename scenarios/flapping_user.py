"""The flapping Locust user: connect, hold, disconnect, pause, cycle after cycle.

Glue between the pure schedule and tracker and the WebSocket session: each action
becomes a Locust request event of type `WS` (a row in stats, CSV and HTML reports):
`connect`, `echo`, and one row per disconnect style (`close`, `abrupt`, `reset`,
`half-open`, `handshake-abort`), so the stats show which style hurt the server.
"""

from __future__ import annotations

import itertools
import logging
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import gevent
from gevent import GreenletExit, get_hub, getcurrent
from locust import User, constant, task
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser
from locust.user.users import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from scenarios.client import WsClient
from scenarios.disconnect import ABRUPT, CLEAN, HALF_OPEN, HANDSHAKE_ABORT, REQUEST_NAMES, RESET
from scenarios.exchange import StepFailed, Talk
from scenarios.feed import FeedTargets
from scenarios.feeder import Feeder
from scenarios.handshake import loopback_source_addresses
from scenarios.lifecycle import Connection, ConversationScript
from scenarios.schedule import (
    FlapCycle,
    FlapSchedule,
    disconnect_deadline,
    reconnect_deadline,
    start_offset_s,
    storm_grid,
    user_rng,
)
from scenarios.settings import ClientSettings, FlapSettings, SteadySettings
from scenarios.tracker import ConnectionTracker, UserNumbers
from scenarios.ws_events import fire_ws_request
from scenarios.ws_session import WebSocketSession, WsFailure, describe_failure

PARK_CHECK_S = 0.5  # how often a parked (finished) user looks whether Locust is stopping it

logger = logging.getLogger("flapping_pack")
_users_logger = logging.getLogger("locust.user.users")  # where Locust's User.run logs (see FlappingUser.run)
_task_logger = logging.getLogger("locust.user.task")  # where Locust's TaskSet.run logs


class FlapContext:
    """Shared by the clients of one Locust process: settings, the client factory and the connection tracker."""

    def __init__(
        self,
        flap: FlapSettings | None = None,
        client: ClientSettings | None = None,
        steady: SteadySettings | None = None,
    ) -> None:
        self.flap = flap or FlapSettings()  # what each flapping user does
        self.steady = steady or SteadySettings()  # the steady users' interval
        self._client_settings = client or ClientSettings()  # how connections are made and what they say
        self._client: WsClient | None = None  # made from the client settings on first use
        self.tracker = ConnectionTracker()  # counts of this process's users
        self.user_numbers = UserNumbers()  # flapping users' numbers in this process: 0, 1, ... in each round
        self.steady_numbers = UserNumbers()  # steady users', counted after the probe's (-u + 1 + k)
        self._sources_for: tuple[str, int] | None = None  # the (URL, count) `_sources` was made for
        self._sources: tuple[str, ...] = ()  # the source addresses connections take in turn; () for none
        self._source_turns = itertools.count()  # round-robin over `_sources`
        self.feed_targets = FeedTargets()  # the users active now, and what the feeder sent each (feed:)
        self.worker_index: Callable[[], int] = lambda: 0  # this process's Locust worker index, once known
        self._feeder: Feeder | None = None  # the process's feeder, once a user started with a feed

    def configure(self, flap: FlapSettings, client: ClientSettings, steady: SteadySettings) -> None:
        """New settings (the web UI changed options): users started from now on use them."""
        self.flap = flap
        self.steady = steady
        if client != self._client_settings:
            self._client_settings = client
            self._client = None

    @property
    def client(self) -> WsClient:
        """The one client factory of this process's connections (flapping, steady and the probe)."""
        if self._client is None:
            self._client = WsClient(self._client_settings, self.worker_index)
        return self._client

    def source_address(self, url: str) -> str | None:
        """The local address for this process's next connection to `url`, in turn; None to let the kernel pick.

        Logs once per URL whether connections are spread (only for a server on 127.0.0.0/8).
        """
        count = self.flap.source_addresses
        if count <= 1:
            return None
        if self._sources_for != (url, count):
            self._sources_for = (url, count)
            self._sources = loopback_source_addresses(urlsplit(url).hostname or "", count)
            if self._sources:
                logger.info(
                    "flapping-pack: spreading connections over %d source addresses (%s-%s)",
                    len(self._sources),
                    self._sources[0],
                    self._sources[-1],
                )
            else:
                logger.warning(
                    "flapping-pack: not spreading connections over source addresses: "
                    "the server is not on 127.0.0.0/8 (--flap-source-addresses %d)",
                    count,
                )
        if not self._sources:
            return None
        return self._sources[next(self._source_turns) % len(self._sources)]

    def user_active(self, environment: Any, number: int, host: str) -> None:
        """A flapping user began under `number`: fed from now on, by the feeder started here if needed."""
        self.feed_targets.add(number)
        client = self.client
        if client.conversation.feed is None or (self._feeder is not None and self._feeder.running):
            return
        feeder_number = users_asked(environment) + 1 + self.steady_numbers.take()  # like a steady user's
        self._feeder = Feeder(
            environment, client, script_class(environment), self.feed_targets, self.tracker, host, feeder_number
        )
        self._feeder.start()

    def user_inactive(self, number: int) -> None:
        """The user under `number` finished or was stopped: the feeder leaves it out (and ends with the last)."""
        self.feed_targets.remove(number)

    def stop_feeder(self) -> None:
        """Kill the feeder, if one runs (test stop); returns when its session is counted."""
        feeder, self._feeder = self._feeder, None
        if feeder is not None:
            feeder.stop()

    def reset(self) -> None:
        """Start counting afresh for a new test run."""
        self.stop_feeder()
        self.feed_targets = FeedTargets()
        self.tracker.reset()
        self.user_numbers = UserNumbers()
        self.steady_numbers = UserNumbers()


_contexts: weakref.WeakKeyDictionary[Any, FlapContext] = weakref.WeakKeyDictionary()  # one per Locust environment


def flap_context(environment: Any) -> FlapContext:
    """The clients' shared context of this Locust environment, made with defaults on first use."""
    context = _contexts.get(environment)
    if context is None:
        context = _contexts[environment] = FlapContext()
        # A worker learns its index from the master after it connected: read when a connection starts.
        context.worker_index = lambda: max(getattr(environment.runner, "worker_index", 0) or 0, 0)
    return context


def users_asked(environment: Any) -> int:
    """How many flapping users the run asks for (-u, or the web UI's number): read here only.

    The users are numbered 0 to this minus one; the recovery probe speaks as this number,
    the steady users as the numbers after it (`FlapContext.steady_numbers`).
    """
    return int(getattr(environment.parsed_options, "num_users", 0) or 0)


def use_context(environment: Any, context: FlapContext) -> FlapContext:
    """Give this Locust environment's clients `context` (tests and benchmarks build their own)."""
    _contexts[environment] = context
    return context


def _park(delay: float) -> None:
    """Sleep about `delay` seconds (> 0) on a bare event-loop timer; may return early.

    `gevent.sleep` with less: no `Waiter` and one frame less on the parked greenlet's
    stack, memory that every user holds for the whole time it sleeps. The timer switches
    straight back to this greenlet; anything else that switches in (a kill throws
    GreenletExit) also ends the park, so callers loop until their deadline. The timer is
    closed on every way out.
    """
    hub = get_hub()
    loop = hub.loop
    timer = loop.timer(delay)
    try:
        loop.update_now()  # as gevent.sleep: the delay counts from now, not from the loop's last tick
        timer.start(getcurrent().switch)
        hub.switch()
    finally:
        timer.close()


def _sleep_until(deadline: float) -> None:
    """Sleep until the perf clock reaches `deadline`; a deadline already passed still yields once."""
    delay = deadline - time.perf_counter()
    if delay <= 0:
        gevent.sleep(0)
        return
    while delay > 0:  # a timer may fire a little early, or something else switched in
        _park(delay)
        delay = deadline - time.perf_counter()


def _sleep_until_wall(deadline: float) -> None:
    # The storm grid is wall-clock time, shared with the other processes; a timer may fire
    # a little early, so sleep again until the clock has really reached the boundary.
    while (delay := deadline - time.time()) > 0:
        _park(delay)


def _run_user(user: User) -> None:
    """A user greenlet's function, one for all users (see `FlappingUser.start`)."""
    user.run()


class FlappingUser(User):
    """A WebSocket client on an unstable network: it flaps its connection on a schedule.

    Each connection speaks the run's conversation (`--ws-conversation`, by default an echo
    per hold). To script it in Python, subclass `ConversationScript` and name it as this
    class's `script`: the steady users and the recovery probe speak it too; see the README.
    """

    abstract = True
    wait_time = constant(0)  # the schedule owns all waiting
    script: type[ConversationScript] = ConversationScript  # what each connection says; one per connection
    # Slots for this class's own attributes (Locust's keep the instance dict): memory per user.
    __slots__ = (
        "_context",
        "_settings",
        "_tracker",
        "_number",
        "_number_released",
        "_cycles",
        "_grid",
        "_next_boundary",
        "_next_connect",
        "_client",
        "_session",
        "_connected_at",
        "_half_open",
        "_half_open_since",
        "_half_open_hold_s",
        "_finished",
        "_carry",
    )

    def start(self, group: Any) -> Any:
        """Locust's `User.start` without its per-user closure: spawn `run` with the user as the first argument.

        (Locust finds a greenlet's user as `greenlet.args[0]`, as with its own closure.)
        """
        self._greenlet = group.spawn(_run_user, self)
        self._group = group
        return self._greenlet

    def run(self) -> None:  # type: ignore[misc]  # Locust marks it final; why it is overridden: below
        """Locust's `User.run` and `TaskSet.run` for this one-task user, without a `DefaultTaskSet`.

        Why: Locust makes a `DefaultTaskSet` (an object, its dict and a task deque, about
        1 KB) per user only to call the one task in a loop, memory every user holds for the
        whole run. This mirrors the two methods of the pinned Locust (`locust/user/users.py`,
        `locust/user/task.py`): state RUNNING; an on_start error logged, `user_error` fired
        (not for StopUser/StopTest) and re-raised; the task run while the user is not
        stopping, with Locust's `wait()` between runs; a task's unexpected exception fires
        `user_error` and is logged and waited on with `catch_exceptions`, else raised;
        InterruptTaskSet and the Reschedule exceptions as Locust treats them; GreenletExit,
        StopUser and StopTest end in on_stop. One difference: `user_error`'s `user_instance`
        is the user, where Locust passes its DefaultTaskSet (Locust's own listeners ignore it).
        `User.wait()` needs the task set: this class never calls it. A subclass with other
        tasks gets Locust's own loop. `tests/scenarios/test_flapping_user_run.py` compares
        both loops case by case.
        """
        tasks = self.tasks
        if len(tasks) != 1 or isinstance(tasks[0], type):
            super().run()
            return
        task_function = tasks[0]
        self._state = LOCUST_STATE_RUNNING
        try:
            try:
                self.on_start()
            except Exception as error:
                _users_logger.error("%s\n%s", error, traceback.format_exc())
                if not isinstance(error, (StopUser, StopTest)):
                    self.environment.events.user_error.fire(user_instance=self, exception=error, tb=error.__traceback__)
                raise
            self._run_task(task_function)
        except (GreenletExit, StopUser, StopTest):
            self.on_stop()

    def _run_task(self, task_function: Any) -> None:
        """`TaskSet.run`'s loop for one task (see `run`)."""
        while True:
            try:
                try:
                    if self._state == LOCUST_STATE_STOPPING:
                        raise StopUser()
                    task_function(self)
                except RescheduleTaskImmediately:
                    pass
                except RescheduleTask:
                    self._locust_wait()
                else:
                    self._locust_wait()
            except InterruptTaskSet as error:
                if error.reschedule:
                    raise RescheduleTaskImmediately(error.reschedule) from error
                raise RescheduleTask(error.reschedule) from error
            except (StopUser, StopTest, GreenletExit):
                raise
            except Exception as error:
                self.environment.events.user_error.fire(user_instance=self, exception=error, tb=error.__traceback__)
                if not self.environment.catch_exceptions:
                    raise
                _task_logger.error("%s\n%s", error, traceback.format_exc())
                self._locust_wait()

    def _locust_wait(self) -> None:
        """`TaskSet.wait`: a user stopped gracefully stops here; while it waits, a stop kills it at once."""
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        self._state = LOCUST_STATE_WAITING
        gevent.sleep(self.wait_time())
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        self._state = LOCUST_STATE_RUNNING

    def on_start(self) -> None:
        """Set up this user's schedule and counters."""
        context = flap_context(self.environment)
        self._context = context  # shared with the process's other users: source addresses
        self._settings = context.flap  # fixed for this user's life
        self._tracker = context.tracker  # where every step is counted
        self._number = context.user_numbers.take()  # this user's number in its process
        self._number_released = False  # given back once the user is stopped
        index = context.worker_index() * 1_000_000 + self._number  # this user's number among all workers' users
        rng = user_rng(self._settings.timing.seed, index)
        schedule = FlapSchedule(self._settings.timing, rng, self._settings.disconnect)
        self._cycles = iter(schedule)  # the remaining planned cycles
        self._grid = storm_grid(self._settings.timing)  # storm mode's shared wall-clock grid, else None
        self._next_boundary: float | None = None  # storm mode: wall-clock time of the next connect, once planned
        # The deadline of the next connect, perf clock; the first one is this user's phase
        # within the period (storm mode plans on its grid instead).
        self._next_connect: float | None = (
            None if self._grid is not None else time.perf_counter() + start_offset_s(self._settings.timing, index)
        )
        self._client = context.client  # makes this user's sessions and conversations
        self._session: WebSocketSession | None = None  # the connection being held, if any
        self._connected_at = 0.0  # when the open connection's handshake completed
        self._half_open: WebSocketSession | None = None  # a connection left half-open until the pause ends
        self._half_open_since = 0.0  # when the hold of that connection ended
        self._half_open_hold_s = 0.0  # how long it was held before
        self._finished = False  # all cycles done
        # This user's stream and resume state across its reconnects (a conversation with stream: or resume:).
        self._carry = self._client.carry(self._tracker.total.continuity)
        self._tracker.user_started()
        context.user_active(self.environment, self._number, self.host or "")

    @task
    def flap(self) -> None:
        """Run every planned cycle, then park until the run's next phase stops this user."""
        try:
            self._flap_then_park()
        finally:
            # Stopped (or killed): a later round's user may take this number.
            if not self._number_released:
                self._number_released = True
                self._context.user_numbers.give_back(self._number)

    def _flap_then_park(self) -> None:
        try:
            if self._next_connect is not None:
                _sleep_until(self._next_connect)  # this user's phase (see start_offset_s)
            for cycle in self._cycles:
                if self._stopping():
                    return  # a graceful stop (--stop-timeout): no new cycle
                self._run_cycle(cycle)
        finally:
            # Reached on a normal end and when the user is killed mid-cycle (GreenletExit):
            # a killed user drops its sockets at once instead of blocking shutdown.
            self._context.user_inactive(self._number)
            self._drop_open_connection()
            self._release_half_open(report=False)
        if not self._finished:
            self._finished = True
            self._tracker.user_finished()
        # A user that ended would be replaced by Locust while it still ramps up to -u
        # users, and the replacement would flap again: so a finished user parks instead.
        # The load shape sees every user finished and stops them all.
        while not self._stopping():
            _park(PARK_CHECK_S)

    def _stopping(self) -> bool:
        return self._state == LOCUST_STATE_STOPPING

    # --- one cycle ---------------------------------------------------------------------------

    def _new_session(self) -> WebSocketSession:
        host = self.host or ""
        return self._client.session(host, source_address=self._context.source_address(host))

    def _run_cycle(self, cycle: FlapCycle) -> None:
        slot = self._wait_for_slot()
        started = time.perf_counter()
        if cycle.disconnect == HANDSHAKE_ABORT:
            self._abort_handshake(started)
            self._pause(cycle, slot)
            self._tracker.cycle_completed(time.perf_counter() - started)
            return
        connection = Connection(
            self._client, self.script(), self._new_session(), self._report, self._number, cycle.index, self._carry
        )
        self._tracker.connect_attempted()
        if connection.connect(started) is not None:
            self._tracker.connect_failed()
            self._pause(cycle, slot)
            self._tracker.cycle_completed(time.perf_counter() - started)
            return
        self._connected_at = time.perf_counter()
        self._session = connection.session
        self._tracker.connect_succeeded()
        # Storm mode: the hold counts from the grid boundary, so every user drops at once.
        planned_disconnect = disconnect_deadline(slot if self._grid is not None else self._connected_at, cycle)

        talk = connection.talk
        assert talk is not None
        if connection.open() is None:
            self._tracker.session_established()
            succeeded = connection.hold() is None and self._idle(talk, planned_disconnect)
            if succeeded:
                succeeded = self._disconnect(connection, cycle.disconnect)
            self._tracker.session_ended(succeeded, talk.messages_received)
            if self._carry is not None:
                # A clean goodbye that the protocol takes as the end of its session is not resumed.
                on_purpose = succeeded and cycle.disconnect == CLEAN and talk.framing.goodbye_ends_session
                self._carry.session_ended(on_purpose)
        else:
            self._tracker.connect_failed()  # the server refused the session behind the handshake
        self._drop_open_connection()  # a failed step left the connection dropped

        self._pause(cycle, slot)
        self._release_half_open(report=True)  # right before the next connect
        self._tracker.cycle_completed(time.perf_counter() - started)

    def _wait_for_slot(self) -> float:
        """The planned start of this cycle, perf clock; storm mode sleeps until its grid boundary first.

        Without storm mode the pause (or, before the first cycle, the phase offset) has already slept until it.
        """
        if self._grid is None:
            return self._next_connect if self._next_connect is not None else time.perf_counter()
        boundary = self._next_boundary if self._next_boundary is not None else self._grid.next_boundary(time.time())
        self._next_boundary = None
        _sleep_until_wall(boundary)
        return time.perf_counter() - (time.time() - boundary)

    def _pause(self, cycle: FlapCycle, slot: float) -> None:
        """Sleep until the next connect may start: one period after `slot`, or at the next grid boundary.

        `slot` is this cycle's planned start (see `reconnect_deadline`).
        """
        if self._grid is None:
            self._next_connect = reconnect_deadline(slot, cycle, time.perf_counter())
            _sleep_until(self._next_connect)
            return
        self._next_boundary = self._grid.next_boundary(time.time())
        _sleep_until_wall(self._next_boundary)

    def _idle(self, talk: Talk, planned_disconnect: float) -> bool:
        """The rest of the hold: read what the server sends and answer its pings; False when the session broke."""
        try:
            talk.idle_until(planned_disconnect)
        except StepFailed:
            return False
        return True

    def _disconnect(self, connection: Connection, style: str) -> bool:
        """End the held connection in the cycle's style (each style is its own stats row); False when it failed.

        A clean disconnect first runs the close steps; when they fail, the connection is
        already dropped (and counted by `_drop_open_connection`). Its `close` row then times
        the protocol's goodbye and the close handshake.
        """
        if style == CLEAN and connection.close_steps() is not None:
            return False
        session = connection.session
        started = time.perf_counter()
        self._session = None
        if style == HALF_OPEN:
            # No close frame, no FIN, no reading: the socket stays open until the pause ends.
            self._half_open = session
            self._half_open_since = started
            self._half_open_hold_s = started - self._connected_at
            return True
        self._tracker.disconnected(started - self._connected_at)
        name = REQUEST_NAMES[style]
        try:
            if style == ABRUPT:
                session.close_abrupt()
            elif style == RESET:
                session.close_reset()
            else:
                assert style == CLEAN, style
                connection.goodbye()
        except WsFailure as failure:
            self._report(name, started, failure=failure)
            return False
        self._report(name, started)
        return True

    def _release_half_open(self, report: bool) -> None:
        """Drop a connection left half-open (with a RST); `report` fires its `half-open` row.

        The row's time is how long the connection was left half-open.
        """
        session, self._half_open = self._half_open, None
        if session is None:
            return
        session.abort(reset=True)
        self._tracker.disconnected(self._half_open_hold_s)
        if report:
            self._report(REQUEST_NAMES[HALF_OPEN], self._half_open_since)

    def _abort_handshake(self, started: float) -> None:
        """A handshake-abort cycle: send the upgrade request, drop TCP before the 101 (its own row)."""
        name = REQUEST_NAMES[HANDSHAKE_ABORT]
        try:
            self._new_session().abort_handshake()
        except WsFailure as failure:
            self._report(name, started, failure=failure)
            return
        self._report(name, started)

    def _drop_open_connection(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.abort()
            self._tracker.disconnected(time.perf_counter() - self._connected_at)

    def _report(self, name: str, started: float, length: int = 0, failure: WsFailure | None = None) -> None:
        """One row of this user's: a conversation step's (the `Talk` callback), a connect's, a drop's."""
        fire_ws_request(self.environment, name, started, length, failure)


def script_class(environment: Any) -> type[ConversationScript]:
    """The run's conversation script: the one its flapping user class names, so every client speaks it."""
    for user_class in getattr(environment, "user_classes", None) or ():
        if isinstance(user_class, type) and issubclass(user_class, FlappingUser):
            return user_class.script
    return ConversationScript


HOOKS_ON_USER = ("on_open", "on_hold", "on_close")  # where conversations in Python used to live


def hooks_on_user_classes(user_classes: Any) -> str | None:
    """The one line refusing a user class that defines conversation hooks itself (they belong on its script)."""
    for user_class in user_classes or ():
        if isinstance(user_class, type) and issubclass(user_class, FlappingUser):
            found = [hook for hook in HOOKS_ON_USER if hook in vars(user_class)]
            if found:
                return (
                    f"{user_class.__name__}.{found[0]}: conversation hooks go on a ConversationScript subclass, "
                    f"named by the user class as `script = ...` (see the README, A conversation in Python)"
                )
    return None


__all__ = [
    "FlapContext",
    "FlappingUser",
    "describe_failure",
    "flap_context",
    "hooks_on_user_classes",
    "script_class",
    "use_context",
]
