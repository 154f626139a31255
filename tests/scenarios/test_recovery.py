"""The recovery probe against a real server: retries until the first good round trip."""

from __future__ import annotations

import time

from refserver.launch import start_refserver
from scenarios.recovery import probe_recovery
from scenarios.ws_session import WebSocketSession


def test_a_healthy_server_recovers_at_once() -> None:
    """Against a healthy server the first attempt gives a good round trip within milliseconds."""
    with start_refserver([], env={"REFSERVER_AUTH_TOKEN": None}) as server:
        ended = time.perf_counter()
        result = probe_recovery(lambda t: WebSocketSession(server.url, timeout_s=t), ended, deadline_s=5)
    assert result.attempts == 1
    assert result.echoes == 5
    assert result.failure is None
    assert result.recovery_ms is not None and result.recovery_ms < 2000


def test_a_slow_handshake_shows_in_the_recovery_time() -> None:
    """A 300 ms handshake delay makes recovery take at least 300 ms."""
    with start_refserver(["--slow-handshake-ms", "300"], env={"REFSERVER_AUTH_TOKEN": None}) as server:
        result = probe_recovery(lambda t: WebSocketSession(server.url, timeout_s=t), time.perf_counter(), 5)
    assert result.recovery_ms is not None and result.recovery_ms >= 300


def test_no_server_means_no_recovery_within_the_deadline() -> None:
    """With nothing listening the probe retries until its deadline and reports the last failure."""
    with start_refserver([], env={"REFSERVER_AUTH_TOKEN": None}) as server:
        url = server.url
    started = time.perf_counter()
    result = probe_recovery(lambda t: WebSocketSession(url, timeout_s=t), started, deadline_s=0.5)
    assert result.recovery_ms is None
    assert result.attempts > 1
    assert result.failure == "connection refused"
    assert time.perf_counter() - started < 3
