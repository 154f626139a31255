"""The text-protocol test servers hold the clients to their specifications: pings must be answered, signatures right."""

from __future__ import annotations

import hashlib
import hmac
import json

import websocket

from tests.test_servers.helpers import close_code, connect, recv_json, scrape, send_json

SECRET = "pusher-server-s3cret"


def test_centrifugo_closes_a_client_that_does_not_answer_its_ping(start_app_server) -> None:
    """After connect, the server pings with {}; with no {} back within the timeout it closes with 3012 (no pong)."""
    server = start_app_server("text_protocols", "--protocol", "centrifugo", "--ping-s", "0.2", "--timeout-s", "0.3")
    ws = connect(f"ws://{server.netloc}/connection/websocket")
    send_json(ws, {"id": 1, "connect": {}})
    reply = recv_json(ws)
    assert isinstance(reply, dict) and reply["id"] == 1 and reply["connect"]["pong"] is True
    assert ws.recv() == "{}"  # the ping
    assert close_code(ws) == 3012


def test_pusher_refuses_a_private_channel_with_a_wrong_signature_and_takes_the_right_one(start_app_server) -> None:
    """The socket_id comes as JSON in a string; auth is KEY:HMAC-SHA256(secret, socket_id:channel)."""
    server = start_app_server("text_protocols", "--protocol", "pusher", env={"APP_AUTH_TOKEN": SECRET})
    ws = connect(f"ws://{server.netloc}/app/the-key?protocol=7")
    established = recv_json(ws)
    assert isinstance(established, dict) and established["event"] == "pusher:connection_established"
    socket_id = json.loads(established["data"])["socket_id"]
    send_json(ws, {"event": "pusher:subscribe", "data": {"channel": "private-a", "auth": "the-key:0000"}})
    refused = recv_json(ws)
    assert isinstance(refused, dict) and refused["event"] == "pusher:subscription_error"
    signature = hmac.new(SECRET.encode(), f"{socket_id}:private-a".encode(), hashlib.sha256).hexdigest()
    send_json(ws, {"event": "pusher:subscribe", "data": {"channel": "private-a", "auth": f"the-key:{signature}"}})
    assert recv_json(ws) == {"event": "pusher_internal:subscription_succeeded", "channel": "private-a", "data": "{}"}
    assert scrape(server.metrics_url)["app_agents_active"] == 1
    ws.close()


def test_nats_sends_its_protocol_in_binary_frames_and_delivers_to_subscribers(start_app_server) -> None:
    """INFO on connect, then PUB to a subscribed subject comes back as MSG and the payload, CRLF-ended, in binary."""
    server = start_app_server("text_protocols", "--protocol", "nats")
    ws = connect(f"ws://{server.netloc}/")
    opcode, info = ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_BINARY and info.startswith(b"INFO {")
    ws.send("CONNECT {}\r\nSUB a.b 7\r\nPUB a.b 2\r\nhi\r\n")
    assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"MSG a.b 7 2\r\nhi\r\n")
    ws.close()
