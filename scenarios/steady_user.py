"""Steady users: long-lived connections that keep talking while others flap.

Each holds one connection, runs the conversation's open steps once and its hold steps
every `--steady-interval-ms` (reading and answering pings in between); its rows are the
conversation's with a `steady-` prefix (`steady-connect`, `steady-echo`, ...), so their
latency shows whether flapping clients hurt stable ones; `steady_p95_ms` judges it.
"""

from __future__ import annotations

import time

import gevent
from locust import User, constant, task

from scenarios.exchange import StepFailed, Talk, converse
from scenarios.flapping_user import FlappingUser, conversation_script, flap_context
from scenarios.ws_events import fire_ws_request
from scenarios.ws_session import WsFailure

CLOSE_ON_STOP_S = 1.0  # a stopped steady user closes cleanly within this, else drops
ROW_PREFIX = "steady-"


class SteadyUser(User):
    """A client on a good network: one connection, the hold steps every `--steady-interval-ms`."""

    abstract = True
    wait_time = constant(0)
    fixed_count = 0  # set from --steady-users by the pack; 0 users unless asked for
    interval_s = 0.1  # set from --steady-interval-ms by the pack

    @task
    def hold(self) -> None:
        """Connect and open, run the hold steps on a fixed period, reconnect after a failure; close when stopped."""
        script = conversation_script(self.environment)
        interval_s = self.interval_s
        talk: Talk | None = None
        try:
            while True:
                if talk is None:
                    talk = self._connect(script)
                    if talk is None:
                        gevent.sleep(interval_s)
                        continue
                next_round = time.perf_counter() + interval_s
                try:
                    if converse(talk, "hold", script.on_hold) is not None:
                        raise StepFailed("hold failed")
                    talk.idle_until(next_round)
                except StepFailed:
                    talk = None
                    gevent.sleep(max(0.0, next_round - time.perf_counter()))
        finally:
            if talk is not None and talk.session.is_open:
                self._close(script, talk)

    def _connect(self, script: FlappingUser) -> Talk | None:
        client = flap_context(self.environment).client
        session = client.session(self.host or "")
        started = time.perf_counter()
        try:
            session.connect()
        except WsFailure as failure:
            self._report("connect", started, 0, failure)
            return None
        self._report("connect", started, 0, None)
        talk = client.talk(session, self._report)
        if converse(talk, "open", script.on_open, client.opening) is not None:
            return None
        return talk

    @staticmethod
    def _close(script: FlappingUser, talk: Talk) -> None:
        # A steady client leaves politely even when Locust stops it, but never for long.
        try:
            with gevent.Timeout(CLOSE_ON_STOP_S):
                if converse(talk, "close", script.on_close) is None:
                    talk.close_clean()
        except (WsFailure, gevent.Timeout):
            talk.session.abort()

    def _report(self, name: str, started: float, length: int, failure: WsFailure | None) -> None:
        fire_ws_request(self.environment, ROW_PREFIX + name, started, length, failure)
