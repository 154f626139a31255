"""The recovery probe against a real server: retries until the first good exchange of the conversation."""

from __future__ import annotations

import time

from refserver.launch import start_refserver
from scenarios.client import WsClient
from scenarios.lifecycle import ConversationProbe, ConversationScript
from scenarios.recovery import RecoveryResult, probe_recovery
from scenarios.settings import ClientSettings
from scenarios.ws_session import WsFailure


def _probe(url: str, started: float, deadline_s: float) -> RecoveryResult:
    client = WsClient(ClientSettings(timeout_s=2.0))
    return probe_recovery(
        lambda t: ConversationProbe(client, ConversationScript(), url, t, user=10), started, deadline_s
    )


def test_a_healthy_server_recovers_at_once() -> None:
    """Against a healthy server the first attempt gives a good exchange within milliseconds."""
    with start_refserver([], env={"REFSERVER_AUTH_TOKEN": None}) as server:
        result = _probe(server.url, time.perf_counter(), deadline_s=5)
    assert result.attempts == 1
    assert result.exchanges == 5
    assert result.failure is None
    assert result.recovery_ms is not None and result.recovery_ms < 2000


def test_a_slow_handshake_shows_in_the_recovery_time() -> None:
    """A 300 ms handshake delay makes recovery take at least 300 ms."""
    with start_refserver(["--slow-handshake-ms", "300"], env={"REFSERVER_AUTH_TOKEN": None}) as server:
        result = _probe(server.url, time.perf_counter(), 5)
    assert result.recovery_ms is not None and result.recovery_ms >= 300


def test_no_server_means_no_recovery_within_the_deadline() -> None:
    """With nothing listening the probe retries until its deadline and reports the last failure."""
    with start_refserver([], env={"REFSERVER_AUTH_TOKEN": None}) as server:
        url = server.url
    started = time.perf_counter()
    result = _probe(url, started, deadline_s=0.5)
    assert result.recovery_ms is None
    assert result.attempts > 1
    assert result.failure == "connection refused"
    assert time.perf_counter() - started < 3


class _ScriptedProbe:
    """A probe connection whose open fails for the first `failures` attempts; the clock moves 10 ms a call."""

    def __init__(self, clock: list[float], failures: list[str]) -> None:
        self.clock, self.failures = clock, failures

    def open(self) -> None:
        self.clock[0] += 0.01
        if self.failures:
            raise WsFailure(self.failures.pop(0))

    def exchange(self) -> None:
        self.clock[0] += 0.01

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_recovery_counts_from_the_end_of_flapping_to_the_first_good_round() -> None:
    """Two failed attempts, then success: recovery_ms spans the failures, the open and the first exchange."""
    clock = [100.0]
    failures = ["expect timed out", "connection refused"]
    result = probe_recovery(
        lambda t: _ScriptedProbe(clock, failures), 100.0, 5.0, clock=lambda: clock[0], sleep=lambda s: None
    )
    assert result.attempts == 3
    assert result.exchanges == 5
    assert result.failure is None
    assert result.recovery_ms is not None and round(result.recovery_ms) == 40  # 3 opens and 1 round, 10 ms each
