"""Steady users: long-lived connections that keep echoing while others flap.

Their echo latency (`steady-echo` in the stats) shows whether flapping clients hurt
stable ones; the `steady_p95_ms` check judges it.
"""

from __future__ import annotations

import time

import gevent
from locust import User, constant, task

from scenarios.flapping_user import FlapSettings, flap_context
from scenarios.ws_events import fire_ws_request
from scenarios.ws_session import WebSocketSession, WsFailure

CLOSE_ON_STOP_S = 1.0  # a stopped steady user closes cleanly within this, else drops


class SteadyUser(User):
    """A client on a good network: one connection, an echo every `--steady-interval-ms`."""

    abstract = True
    wait_time = constant(0)
    fixed_count = 0  # set from --steady-users by the pack; 0 users unless asked for
    interval_s = 0.1  # set from --steady-interval-ms by the pack

    @task
    def hold(self) -> None:
        """Connect, echo on a fixed period, reconnect after a failure; close cleanly when stopped."""
        settings = flap_context(self.environment).settings
        interval_s = self.interval_s
        session: WebSocketSession | None = None
        try:
            while True:
                if session is None:
                    session = self._connect(settings)
                    if session is None:
                        gevent.sleep(interval_s)
                        continue
                next_echo = time.perf_counter() + interval_s
                sent = time.perf_counter()
                try:
                    length = session.echo("steady")
                    self._fire("steady-echo", sent, length)
                except WsFailure as failure:
                    self._fire("steady-echo", sent, failure=failure)
                    session.abort()
                    session = None
                gevent.sleep(max(0.0, next_echo - time.perf_counter()))
        finally:
            if session is not None:
                self._close(session)

    def _connect(self, settings: FlapSettings) -> WebSocketSession | None:
        session = WebSocketSession(
            self.host or "",
            timeout_s=settings.timeout_s,
            auth_token=settings.auth_token,
            auth_in=settings.auth_in,
        )
        started = time.perf_counter()
        try:
            session.connect()
        except WsFailure as failure:
            self._fire("steady-connect", started, failure=failure)
            return None
        self._fire("steady-connect", started)
        return session

    @staticmethod
    def _close(session: WebSocketSession) -> None:
        # A steady client leaves politely even when Locust stops it, but never for long.
        try:
            with gevent.Timeout(CLOSE_ON_STOP_S):
                session.close_clean()
        except (WsFailure, gevent.Timeout):
            session.abort()

    def _fire(self, name: str, started: float, length: int = 0, failure: WsFailure | None = None) -> None:
        fire_ws_request(self.environment, name, started, length, failure)
