"""Client-side helpers for the test-server tests: bounded sockets, JSON frames, drops and /metrics."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import websocket

from tests.refserver.helpers import DEADLINE_S, scrape, wait_for_metric
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
    "rss_bytes",
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


def rss_bytes(metrics_url: str) -> float:
    """The server's resident memory, from its /metrics."""
    return scrape(metrics_url)["process_resident_memory_bytes"]


def wait_for_agents_kept(metrics_url: str, fault: str | None) -> None:
    """After 3 dropped and 2 cleanly closed sessions: leak-agents-on-drop keeps 3 agents, leak-agents 5, healthy 0."""
    wait_for_metric(metrics_url, "app_connections_total", lambda v: v == 5)
    wait_for_metric(metrics_url, "app_connections_active", lambda v: v == 0)
    expected = {None: 0, "leak-agents-on-drop": 3, "leak-agents": 5}[fault]
    wait_for_metric(metrics_url, AGENTS, lambda v: v == expected)


def _rss_growth_bytes(
    start_app_server: Callable[..., RunningAppServer],
    name: str,
    session: Callable[[RunningAppServer], None],
    *args: str,
) -> float:
    """How much the server's RSS grows over LEAK_SESSIONS sessions, each opened and closed by `session`."""
    server = start_app_server(name, "--leak-memory-kb", str(LEAK_KB), *args)
    for _ in range(5):  # warm-up: first sessions allocate lazily initialised state
        session(server)
    before = rss_bytes(server.metrics_url)
    for _ in range(LEAK_SESSIONS):
        session(server)
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    return rss_bytes(server.metrics_url) - before


def assert_leak_memory_grows_rss(
    start_app_server: Callable[..., RunningAppServer], name: str, session: Callable[[RunningAppServer], None]
) -> None:
    """With --fault leak-memory each session leaves --leak-memory-kb KiB resident; without it RSS stays flat."""
    expected = LEAK_KB * 1024 * LEAK_SESSIONS  # 50 MiB
    leaking = _rss_growth_bytes(start_app_server, name, session, "--fault", "leak-memory")
    healthy = _rss_growth_bytes(start_app_server, name, session)
    assert leaking >= 0.8 * expected, f"RSS grew {leaking / 2**20:.1f} MiB, expected ~{expected / 2**20:.0f}"
    assert healthy <= 0.2 * expected, f"RSS grew {healthy / 2**20:.1f} MiB without a fault"
