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

from scenarios.flapping_user import flap_context, script_class, users_asked
from scenarios.lifecycle import Connection
from scenarios.ws_events import fire_ws_request
from scenarios.ws_session import WsFailure

CLOSE_ON_STOP_S = 1.0  # a stopped steady user closes cleanly within this, else drops
ROW_PREFIX = "steady-"


class SteadyUser(User):
    """A client on a good network: one connection, the hold steps every `--steady-interval-ms`."""

    abstract = True
    wait_time = constant(0)
    fixed_count = 0  # Locust's count of this class, set from --steady-users by the pack; 0 unless asked for

    @task
    def hold(self) -> None:
        """Connect and open, run the hold steps on a fixed period, reconnect after a failure; close when stopped."""
        context = flap_context(self.environment)
        interval_s = context.steady.interval_s
        # Its ${user} for all its connections: never a flapping user's (below -u) or the probe's (-u).
        index = context.steady_numbers.take()
        number = users_asked(self.environment) + 1 + index
        connection: Connection | None = None
        try:
            while True:
                if connection is None:
                    connection = self._connect(number)
                    if connection is None:
                        gevent.sleep(interval_s)
                        continue
                assert connection.talk is not None
                next_exchange = time.perf_counter() + interval_s
                if connection.hold() is not None or not self._idle(connection, next_exchange):
                    connection = None
                    gevent.sleep(max(0.0, next_exchange - time.perf_counter()))
        finally:
            context.steady_numbers.give_back(index)  # the next round's steady user takes it
            if connection is not None and connection.session.is_open:
                self._close(connection)

    def _connect(self, number: int) -> Connection | None:
        context = flap_context(self.environment)
        client = context.client
        session = client.session(self.host or "")
        connection = Connection(client, script_class(self.environment)(), session, self._report, user=number)
        if connection.connect() is not None or connection.open() is not None:
            return None
        return connection

    @staticmethod
    def _idle(connection: Connection, until: float) -> bool:
        """Read and answer pings until the next exchange; False when the session broke (its row reported)."""
        assert connection.talk is not None
        try:
            connection.talk.idle_until(until)
        except WsFailure:
            return False
        return True

    @staticmethod
    def _close(connection: Connection) -> None:
        # A steady client leaves politely even when Locust stops it, but never for long.
        try:
            with gevent.Timeout(CLOSE_ON_STOP_S):
                connection.close_politely()
        except gevent.Timeout:
            connection.abort()

    def _report(self, name: str, started: float, length: int, failure: WsFailure | None) -> None:
        fire_ws_request(self.environment, ROW_PREFIX + name, started, length, failure)
