"""Client-side helpers for the test-server tests: bounded sockets, JSON frames, drops and /metrics."""

from __future__ import annotations

import json
import socket

import websocket

from tests.refserver.helpers import DEADLINE_S, scrape, wait_for_metric

__all__ = [
    "DEADLINE_S",
    "close_code",
    "connect",
    "drop",
    "recv_json",
    "rss_bytes",
    "scrape",
    "send_json",
    "wait_for_metric",
]


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
