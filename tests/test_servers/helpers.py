"""Client-side helpers for the test-server tests: bounded sockets, JSON frames, drops and /metrics."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import websocket

from tests.refserver.helpers import (
    DEADLINE_S,
    assert_only_the_leak_grew_rss,
    rss_growth_bytes,
    scrape,
    wait_for_metric,
)
from tests.servers import RunningAppServer

__all__ = [
    "AGENTS",
    "DEADLINE_S",
    "assert_leak_memory_grows_rss",
    "wait_for_agents_kept",
    "close_code",
    "connect",
    "drop",
    "recv_json",
    "scrape",
    "send_json",
    "wait_for_metric",
]

AGENTS = "app_agents_active"  # the servers' agents gauge
LEAK_KB = 512  # --leak-memory-kb in the leak-memory tests
LEAK_SESSIONS = 100  # sessions whose leaked memory is measured


def connect(url: str, **kwargs: object) -> websocket.WebSocket:
    """Open a WebSocket client connection whose every operation times out."""
    return websocket.create_connection(url, timeout=DEADLINE_S, **kwargs)


def send_json(ws: websocket.WebSocket, message: object) -> None:
    """Send a JSON text frame."""
    ws.send(json.dumps(message))


def recv_json(ws: websocket.WebSocket) -> object:
    """Receive one text frame and decode it as JSON."""
    return json.loads(ws.recv())


def close_code(ws: websocket.WebSocket) -> int:
    """Read frames until the server's close frame; return its code (pings are answered on the way)."""
    while True:
        opcode, frame = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame[:2], "big")


def drop(ws: websocket.WebSocket) -> None:
    """Vanish without a close frame, like a killed client or a cut network."""
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()


def wait_for_agents_kept(metrics_url: str, fault: str | None) -> None:
    """After 3 dropped and 2 cleanly closed sessions: leak-agents-on-drop keeps 3 agents, leak-agents 5, healthy 0."""
    wait_for_metric(metrics_url, "app_connections_total", lambda v: v == 5)
    wait_for_metric(metrics_url, "app_connections_active", lambda v: v == 0)
    expected = {None: 0, "leak-agents-on-drop": 3, "leak-agents": 5}[fault]
    wait_for_metric(metrics_url, AGENTS, lambda v: v == expected)


def assert_leak_memory_grows_rss(
    start_app_server: Callable[..., RunningAppServer], name: str, session: Callable[[RunningAppServer], None]
) -> None:
    """With --fault leak-memory each session leaves --leak-memory-kb KiB resident; without it RSS stays flat."""

    def growth(*fault: str) -> float:
        server = start_app_server(name, "--leak-memory-kb", str(LEAK_KB), *fault)
        return rss_growth_bytes(server.metrics_url, lambda: session(server), LEAK_SESSIONS, "app_connections_active")

    leaking = growth("--fault", "leak-memory")
    healthy = growth()
    assert_only_the_leak_grew_rss(leaking, healthy, LEAK_KB * 1024 * LEAK_SESSIONS)  # 50 MiB
