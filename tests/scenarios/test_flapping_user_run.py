"""FlappingUser's own run loop (no DefaultTaskSet) behaves as Locust's `User.run`, case by case; its sleeps."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest
from gevent.pool import Group
from locust import User, events
from locust.env import Environment

from scenarios import flapping_user
from scenarios.flapping_user import FlapContext, FlappingUser, use_context
from scenarios.schedule import FlapTiming
from scenarios.settings import FlapSettings


class ScriptedUser(FlappingUser):
    """A flapping user whose cycles (and on_start) do what the test scripts, no sockets."""

    host = "ws://127.0.0.1:9/"
    plan: dict[str, Any] = {}

    def on_start(self) -> None:
        self.record = {"on_stop": 0, "cycles": 0}
        if self.plan.get("on_start"):
            raise self.plan["on_start"]
        super().on_start()

    def _run_cycle(self, cycle: Any) -> None:
        self.record["cycles"] += 1
        failure = self.plan.get("cycle_fails")
        if failure is not None and self.record["cycles"] == 1:
            raise failure
        gevent.sleep(self.plan.get("cycle_s", 0))

    def on_stop(self) -> None:
        self.record["on_stop"] += 1


class LocustLoopUser(ScriptedUser):
    """The same user on Locust's own loop, for comparison."""

    run = User.run


def _outcome(user_class: type[ScriptedUser], script: dict[str, Any], catch: bool, stop: str) -> tuple:
    environment = Environment(events=events, catch_exceptions=catch)
    timing = FlapTiming(connected_ms=0, disconnected_ms=0, cycles=2)
    use_context(environment, FlapContext(FlapSettings(timing=timing)))
    errors: list[str] = []

    def on_error(user_instance: Any, exception: Exception, tb: Any, **_kw: Any) -> None:
        errors.append(type(exception).__name__)

    environment.events.user_error.add_listener(on_error)
    try:
        user_class.plan = script
        user = user_class(environment)
        greenlet = user.start(Group())
        gevent.sleep(0.2)
        started = time.monotonic()
        if stop == "graceful" and not greenlet.dead:
            user.stop(force=False)
        elif stop == "kill" and not greenlet.dead:
            user.stop(force=True)
        greenlet.join(timeout=3)
        took = time.monotonic() - started
        record = getattr(user, "record", {})
        exception = type(greenlet.exception).__name__ if greenlet.exception is not None else None
        return greenlet.dead, exception, tuple(errors), record.get("on_stop"), record.get("cycles"), took < 1.0
    finally:
        environment.events.user_error.remove_listener(on_error)


CASES = {
    "on_start fails": ({"on_start": RuntimeError("boom")}, True, "none"),
    "task fails, caught": ({"cycle_fails": RuntimeError("boom")}, True, "graceful"),
    "task fails, not caught": ({"cycle_fails": RuntimeError("boom")}, False, "none"),
    "graceful stop while parked": ({}, True, "graceful"),
    "kill mid-cycle": ({"cycle_s": 30}, True, "kill"),
    "graceful stop mid-cycle": ({"cycle_s": 0.5}, True, "graceful"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_run_loop_behaves_as_locusts(case: str) -> None:
    """Same events, exceptions, on_stop calls and cycles as Locust's User.run + DefaultTaskSet."""
    script, catch, stop = CASES[case]
    ours = _outcome(ScriptedUser, script, catch, stop)
    assert ours == _outcome(LocustLoopUser, script, catch, stop)
    assert ours[0]  # the user ended


def test_the_run_loop_needs_no_task_set() -> None:
    environment = Environment(events=events)
    use_context(environment, FlapContext(FlapSettings(timing=FlapTiming(connected_ms=0, disconnected_ms=0, cycles=1))))
    ScriptedUser.plan = {}
    user = ScriptedUser(environment)
    greenlet = user.start(Group())
    gevent.sleep(0.1)
    assert user._taskset_instance is None and user.record["cycles"] == 1
    user.stop(force=True)
    greenlet.join(timeout=2)
    assert greenlet.dead and user.record["on_stop"] == 1


def test_sleep_until_wakes_at_the_deadline_not_before_even_when_woken_early() -> None:
    sleeper_deadline = time.perf_counter() + 0.15
    sleeper = gevent.spawn(flapping_user._sleep_until, sleeper_deadline)
    gevent.sleep(0.03)
    gevent.get_hub().loop.run_callback(sleeper.switch)  # a spurious wake-up: a stray switch into it
    sleeper.join(timeout=2)
    assert sleeper.successful() and time.perf_counter() >= sleeper_deadline
    for delay in (0.0, 0.001, 0.02, 0.05):
        deadline = time.perf_counter() + delay
        flapping_user._sleep_until(deadline)
        now = time.perf_counter()
        assert deadline <= now < deadline + 0.05


def test_sleep_until_a_passed_deadline_still_yields() -> None:
    ran: list[int] = []
    gevent.spawn(ran.append, 1)
    flapping_user._sleep_until(time.perf_counter() - 1)
    assert ran == [1]


def test_sleep_until_wall_reaches_the_wall_clock_deadline() -> None:
    deadline = time.time() + 0.05
    flapping_user._sleep_until_wall(deadline)
    assert time.time() >= deadline


@pytest.mark.parametrize("sleep", ["_sleep_until", "_sleep_until_wall"])
def test_a_kill_during_the_sleep_ends_it_at_once_and_leaves_no_timer(sleep: str) -> None:
    clock = time.perf_counter if sleep == "_sleep_until" else time.time
    sleeper = gevent.spawn(getattr(flapping_user, sleep), clock() + 30)
    gevent.sleep(0.05)
    started = time.monotonic()
    sleeper.kill(block=True, timeout=2)
    assert sleeper.dead and time.monotonic() - started < 0.5
    assert isinstance(sleeper.value, gevent.GreenletExit)
    # Nothing is left to wake the dead greenlet: the loop runs with no pending timer of ours.
    gevent.sleep(0.05)
