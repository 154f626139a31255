"""Each fault mode leaks or misbehaves the way its flag says, and only then."""

from __future__ import annotations

import socket
import time

import pytest
import websocket

from tests.refserver.helpers import (
    StartServer,
    assert_only_the_leak_grew_rss,
    connect,
    rss_growth_bytes,
    scrape,
    wait_for_metric,
)

LEAK_KB = 256
LEAK_CONNECTIONS = 200
FD_CONNECTIONS = 50


def _flap(url: str, count: int) -> None:
    for _ in range(count):
        connect(url).close()


def _rss_growth_bytes(start_server: StartServer, *args: str) -> float:
    server = start_server(*args)
    return rss_growth_bytes(
        server.metrics_url, lambda: connect(server.url).close(), LEAK_CONNECTIONS, "refserver_active_agents"
    )


def test_leak_memory_kb_grows_rss(start_server: StartServer) -> None:
    """--leak-memory-kb N makes RSS grow by about N KiB per connection; without it RSS stays flat."""
    leaking = _rss_growth_bytes(start_server, "--leak-memory-kb", str(LEAK_KB))
    healthy = _rss_growth_bytes(start_server)
    assert_only_the_leak_grew_rss(leaking, healthy, LEAK_KB * 1024 * LEAK_CONNECTIONS)  # 50 MiB


def _drop(ws: websocket.WebSocket) -> None:
    # Vanish without a close frame, like a killed client or a cut network.
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()


@pytest.mark.parametrize("leak", [True, False])
def test_leak_agents_on_drop(start_server: StartServer, leak: bool) -> None:
    """With --leak-agents-on-drop a dropped client's agent stays registered; clean closes still free."""
    server = start_server(*(["--leak-agents-on-drop"] if leak else []))
    for _ in range(3):
        _drop(connect(server.url))
    connect(server.url).close()
    wait_for_metric(server.metrics_url, "refserver_connections_total", lambda v: v == 4)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == (3 if leak else 0))


@pytest.mark.parametrize("leak", [True, False])
def test_leak_fds_grows_open_fds(start_server: StartServer, leak: bool) -> None:
    """With --leak-fds every connection leaves one more open file descriptor behind."""
    server = start_server(*(["--leak-fds"] if leak else []))
    before = scrape(server.metrics_url)["process_open_fds"]
    _flap(server.url, FD_CONNECTIONS)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    growth = scrape(server.metrics_url)["process_open_fds"] - before
    if leak:
        assert FD_CONNECTIONS <= growth <= FD_CONNECTIONS + 3
    else:
        assert growth <= 3


def test_reject_pct_rejects_half(start_server: StartServer) -> None:
    """--reject-pct 50 answers every second handshake with HTTP 503."""
    server = start_server("--reject-pct", "50")
    statuses = []
    for _ in range(20):
        try:
            connect(server.url).close()
            statuses.append(101)
        except websocket.WebSocketBadStatusException as exc:
            statuses.append(exc.status_code)
    assert statuses == [101, 503] * 10
    assert scrape(server.metrics_url)['refserver_handshake_rejections_total{reason="fault"}'] == 10


def test_slow_handshake_ms_delays_handshake(start_server: StartServer) -> None:
    """--slow-handshake-ms N makes each handshake take at least N ms."""
    server = start_server("--slow-handshake-ms", "300")
    for _ in range(2):
        started = time.monotonic()
        ws = connect(server.url)
        assert time.monotonic() - started >= 0.3
        ws.close()
