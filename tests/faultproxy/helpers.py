"""Helpers for the fault proxy tests: bounded waits and a WebSocket client."""

from __future__ import annotations

from collections.abc import Callable

import websocket

from faultproxy.launch import RunningFaultProxy

# Every wait in these tests is bounded by this; it only matters when something is broken.
DEADLINE_S = 5.0

StartProxy = Callable[..., RunningFaultProxy]


def connect(proxy: RunningFaultProxy) -> websocket.WebSocket:
    """Open a WebSocket through the proxy with a bounded timeout."""
    return websocket.create_connection(f"ws://{proxy.netloc}/", timeout=DEADLINE_S)
