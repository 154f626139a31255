"""A flapping user inside Locust keeps its connects one period apart against a real, slow server."""

from __future__ import annotations

import statistics
import time

import gevent
from locust import events
from locust.env import Environment

from scenarios.flapping_user import FlapContext, FlappingUser, use_context
from scenarios.schedule import FlapTiming
from scenarios.settings import ClientSettings, FlapSettings
from tests.servers.raw_ws_server import RawWsServer

HANDSHAKE_S = 0.06  # the server waits this long before its 101
HOLD_MS, PAUSE_MS = 100.0, 100.0
CYCLES = 6


def _connect_gaps(server: RawWsServer) -> list[float]:
    starts = sorted(seen.accepted_at for seen in server.snapshot())
    return [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]


def test_connects_are_one_period_apart_when_the_handshake_is_slow() -> None:
    """A 60 ms handshake comes out of the pause: connects stay hold + pause = 200 ms apart, not 260 ms."""
    with RawWsServer(answer_delay_s=HANDSHAKE_S) as server:
        environment = Environment(events=events)

        class SlowServerUser(FlappingUser):
            host = server.url

        environment.user_classes = [SlowServerUser]
        timing = FlapTiming(connected_ms=HOLD_MS, disconnected_ms=PAUSE_MS, cycles=CYCLES)
        context = use_context(environment, FlapContext(FlapSettings(timing=timing), ClientSettings(timeout_s=2.0)))
        runner = environment.create_local_runner()
        try:
            runner.start(1, spawn_rate=1)
            deadline = time.monotonic() + 20
            while context.tracker.total.users_finished < 1 and time.monotonic() < deadline:
                gevent.sleep(0.05)
        finally:
            runner.quit()
        assert context.tracker.total.connect_successes == CYCLES
        gaps = _connect_gaps(server)
    assert len(gaps) == CYCLES - 1
    period_s = (HOLD_MS + PAUSE_MS) / 1000
    # Relative sleeps would give hold + pause + handshake (+ close) = 260 ms or more.
    assert period_s - 0.01 <= statistics.median(gaps) <= period_s + HANDSHAKE_S / 2, gaps
