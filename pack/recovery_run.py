"""The recovery run: once the last flapping ends, how soon does a stable client get normal service?

It runs the pure retry loop (`scenarios.recovery.probe_recovery`) on a greenlet with the
run's one client factory and conversation script, and reports its one `recovery` row.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from locust.env import Environment

from scenarios.client import WsClient
from scenarios.lifecycle import ConversationProbe, ConversationScript
from scenarios.recovery import RecoveryResult, probe_recovery
from scenarios.ws_events import fire_ws_request
from scenarios.ws_session import WsFailure


class RecoveryRun:
    """The probe of the current run: started once, its result kept for the verdict."""

    def __init__(self, environment: Environment) -> None:
        self._environment = environment  # where the `recovery` row goes
        self._greenlet: gevent.Greenlet | None = None  # the probe, once flapping ends
        self.result: RecoveryResult | None = None  # what the probe found

    def restart(self) -> None:
        """A new run: forget the last probe (and stop it if it still runs)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        self.result = None

    def start(
        self, client: WsClient, script: Callable[[], ConversationScript], host: str, user: int, timeout_s: float
    ) -> None:
        """Probe `host` now, as user number `user` (one no flapping user has), for at most `timeout_s`."""
        ended_at = time.perf_counter()

        def connection(connection_timeout_s: float) -> ConversationProbe:
            return ConversationProbe(client, script(), host, connection_timeout_s, user)

        def probe() -> None:
            result = probe_recovery(connection, ended_at, timeout_s, sleep=gevent.sleep)
            self.result = result
            failure = WsFailure(result.failure) if result.failure else None
            fire_ws_request(
                self._environment, "recovery", ended_at, 0, failure, response_time_ms=result.recovery_ms or 0.0
            )

        self._greenlet = gevent.spawn(probe)

    @property
    def running(self) -> bool:
        """Whether the probe is still trying."""
        return self._greenlet is not None and not self._greenlet.ready()

    def holds_settle(self, elapsed_s: float, within_run_time: bool) -> bool:
        """The run clock's hold: the probe is still trying (bounded by its timeout); -t is a hard limit.

        Locust arms its own -t timer only after a shape ends, so the shape must end by -t.
        """
        return self.running and within_run_time

    def stop(self) -> None:
        """An interrupted run: no measurement."""
        if self.running:
            assert self._greenlet is not None
            self._greenlet.kill(block=True, timeout=2)
