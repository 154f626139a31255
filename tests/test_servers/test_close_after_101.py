"""The close-after-101 server: the handshake succeeds, the session never does."""

from __future__ import annotations

import json

import websocket

from tests.test_servers.helpers import close_code, connect, scrape, send_json


def test_closes_4406_right_after_the_handshake(start_app_server) -> None:
    """Every handshake gets a 101, then a close frame with 4406 before any message."""
    server = start_app_server("close_after_101")
    for _ in range(3):
        ws = connect(server.url)
        assert ws.getstatus() == 101
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 4406
        ws.close()
    metrics = scrape(server.metrics_url)
    assert metrics["app_connections_total"] == 3 and metrics["app_agents_active"] == 0


def test_after_first_message_closes_1011(start_app_server) -> None:
    """With --after-first-message the session stays open until the first message, then closes with 1011."""
    server = start_app_server("close_after_101", "--after-first-message")
    ws = connect(server.url)
    ws.ping(b"alive")  # answered: the session is open before the first message
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, data) == (websocket.ABNF.OPCODE_PONG, b"alive")
    send_json(ws, {"type": "message", "content": json.dumps("hi")})
    assert close_code(ws) == 1011
    ws.close()


def test_close_code_is_configurable(start_app_server) -> None:
    """--close-code picks the code of the close frame."""
    server = start_app_server("close_after_101", "--close-code", "4401")
    ws = connect(server.url)
    assert close_code(ws) == 4401
    ws.close()
