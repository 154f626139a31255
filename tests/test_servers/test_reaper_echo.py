"""The broker-like echo server: its agents gauge is cached, dropped clients are reaped late, leaks stay."""

from __future__ import annotations

import time

import pytest
import websocket

from tests.test_servers.helpers import DEADLINE_S, connect, drop, scrape, wait_for_metric

CACHED = "app_agents_active"
LIVE = "app_agents_live"
REAPED = "app_agents_reaped_total"


def _echo(ws: websocket.WebSocket, text: str = "hi") -> None:
    ws.send(text)
    assert ws.recv() == text


def _first_time(metrics_url: str, name: str, value: float) -> float:
    """Poll until the metric equals `value`; return the perf_counter() when it was first seen."""
    deadline = time.perf_counter() + DEADLINE_S
    while time.perf_counter() < deadline:
        if scrape(metrics_url)[name] == value:
            return time.perf_counter()
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {value}")


def test_the_agents_gauge_changes_only_at_its_refreshes(start_app_server) -> None:
    """While clients keep arriving, the cached gauge steps once per 1 s refresh; the live one follows each client."""
    server = start_app_server("reaper_echo", "--metrics-refresh-s", "1")
    clients: list[websocket.WebSocket] = []
    changes: list[float] = []  # perf_counter() of each change of the cached gauge
    last = scrape(server.metrics_url)[CACHED]
    start = time.perf_counter()
    # 0-3.5 s: a new client every 0.25 s, the gauges scraped every 50 ms.
    while time.perf_counter() - start < 3.5:
        if len(clients) < (time.perf_counter() - start) / 0.25:
            clients.append(connect(server.url))
        value = scrape(server.metrics_url)[CACHED]
        if value != last:
            changes.append(time.perf_counter())
            last = value
        time.sleep(0.05)
    assert len(changes) >= 2
    assert all(later - earlier >= 0.9 for earlier, later in zip(changes, changes[1:], strict=False))
    assert scrape(server.metrics_url)[LIVE] == len(clients)
    wait_for_metric(server.metrics_url, CACHED, lambda v: v == len(clients))
    for ws in clients:
        ws.close()


def test_a_clean_close_frees_the_agent_at_once(start_app_server) -> None:
    """A close frame frees the session's agent without waiting for the 30 s reaper."""
    server = start_app_server("reaper_echo", "--metrics-refresh-s", "0", "--reap-after-s", "30")
    ws = connect(server.url)
    _echo(ws)
    assert scrape(server.metrics_url)[CACHED] == 1  # refresh 0: live
    ws.close()
    wait_for_metric(server.metrics_url, LIVE, lambda v: v == 0)
    assert scrape(server.metrics_url)[REAPED] == 0


def test_a_dropped_client_is_reaped_after_the_delay(start_app_server) -> None:
    """A client gone without a close frame keeps its agent for --reap-after-s, then the reaper frees it."""
    server = start_app_server("reaper_echo", "--metrics-refresh-s", "0", "--reap-after-s", "1.5")
    ws = connect(server.url)
    _echo(ws)
    dropped_at = time.perf_counter()
    drop(ws)
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    assert scrape(server.metrics_url)[LIVE] == 1  # the connection is gone, its state is not
    freed_at = _first_time(server.metrics_url, LIVE, 0)
    assert freed_at - dropped_at >= 1.5
    assert scrape(server.metrics_url)[REAPED] == 1


def test_a_half_open_client_is_noticed_by_the_heartbeat_then_reaped(start_app_server) -> None:
    """A silent client (no FIN, no pongs) is cut after a quiet heartbeat, and its agent reaped after the delay."""
    server = start_app_server("reaper_echo", "--metrics-refresh-s", "0", "--reap-after-s", "1", "--heartbeat-s", "0.5")
    ws = connect(server.url)
    _echo(ws)
    silent_from = time.perf_counter()
    # Never read again, so no pong answers the server's ping; the socket stays open (no FIN).
    freed_at = _first_time(server.metrics_url, LIVE, 0)
    # 0.5 s quiet, a ping, 0.25 s for its pong, then the 1 s reaper.
    assert freed_at - silent_from >= 1.0 + 0.5
    assert scrape(server.metrics_url)[REAPED] == 1
    drop(ws)


@pytest.mark.parametrize(("fault", "kept"), [("leak-agents", 2), ("leak-agents-on-drop", 1)])
def test_leak_faults_keep_the_agents_the_reaper_would_free(start_app_server, fault: str, kept: int) -> None:
    """leak-agents keeps every agent, leak-agents-on-drop the dropped ones, long after the reaper's delay."""
    server = start_app_server("reaper_echo", "--metrics-refresh-s", "0", "--reap-after-s", "0.5", "--fault", fault)
    dropped = connect(server.url)
    _echo(dropped)
    drop(dropped)
    clean = connect(server.url)
    _echo(clean)
    clean.close()
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    time.sleep(1.5)  # three times the reaper's delay: a healthy server has freed both by now
    metrics = scrape(server.metrics_url)
    assert metrics[LIVE] == kept
    assert metrics[REAPED] == 0
