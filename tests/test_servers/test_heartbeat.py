"""The heartbeat server: it pings every second and drops clients that do not answer."""

from __future__ import annotations

import time

import websocket

from tests.test_servers.helpers import DEADLINE_S, connect, scrape, wait_for_metric

HEARTBEAT_S = 1.0
PINGS = 3


def test_pings_about_every_second_and_answered_pings_keep_the_session(start_app_server) -> None:
    """A client that answers pings sees one about every second and still has its session (echo) after them."""
    server = start_app_server("heartbeat")
    ws = connect(server.url)
    ping_times: list[float] = []
    while len(ping_times) < PINGS:
        # websocket-client answers each ping with a pong as it reads it.
        opcode, _ = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PING
        ping_times.append(time.monotonic())
    gaps = [later - earlier for earlier, later in zip(ping_times, ping_times[1:], strict=False)]
    assert all(gap >= 0.8 * HEARTBEAT_S for gap in gaps), gaps
    ws.send("still here")
    while (frame := ws.recv_data(control_frame=True))[0] == websocket.ABNF.OPCODE_PING:
        pass
    assert frame == (websocket.ABNF.OPCODE_TEXT, b"still here")
    ws.close()
    metrics = scrape(server.metrics_url)
    assert metrics["app_heartbeat_timeouts_total"] == 0


def test_unanswered_pings_drop_the_session(start_app_server) -> None:
    """A client that never reads (so never answers a ping) is dropped after about 1.5 s, without a close frame."""
    server = start_app_server("heartbeat")
    ws = connect(server.url)
    assert scrape(server.metrics_url)["app_agents_active"] == 1
    started = time.monotonic()
    wait_for_metric(server.metrics_url, "app_heartbeat_timeouts_total", lambda v: v == 1, timeout_s=DEADLINE_S)
    assert time.monotonic() - started >= HEARTBEAT_S
    assert scrape(server.metrics_url)["app_agents_active"] == 0
    opcodes = []
    try:
        while True:
            opcodes.append(ws.recv_data(control_frame=True)[0])
    except (websocket.WebSocketConnectionClosedException, OSError):
        pass
    assert websocket.ABNF.OPCODE_PING in opcodes and websocket.ABNF.OPCODE_CLOSE not in opcodes
    ws.shutdown()
