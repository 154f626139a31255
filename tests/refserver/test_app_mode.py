"""`--protocol app` on a real server: greeting, ping/pong, in-band auth, agents and the fault modes."""

from __future__ import annotations

import json
import socket

import pytest
import websocket

from refserver.auth import AUTH_TOKEN_ENV
from tests.refserver.helpers import (
    StartServer,
    assert_only_the_leak_grew_rss,
    connect,
    rss_growth_bytes,
    scrape,
    wait_for_metric,
)

TOKEN = "tok-appmode-93b1f0"
LEAK_KB = 512
LEAK_CONNECTIONS = 100


def _recv_json(ws: websocket.WebSocket) -> object:
    return json.loads(ws.recv())


def _send_json(ws: websocket.WebSocket, message: object) -> None:
    ws.send(json.dumps(message))


def _open_session(url: str, token: str = "any") -> websocket.WebSocket:
    ws = connect(url)
    assert _recv_json(ws) == {"type": "connection_established"}
    _send_json(ws, {"type": "auth", "token": token})
    assert _recv_json(ws) == {"type": "auth_ok"}
    return ws


def _drop(ws: websocket.WebSocket) -> None:
    # Vanish without a close frame, like a killed client or a cut network.
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()


def test_app_conversation_and_agent_lifetime(start_server: StartServer) -> None:
    """A session is greeted, answers pings, gets its agent at auth, answers messages, and frees the agent at close."""
    server = start_server("--protocol", "app")
    ws = connect(server.url)
    assert _recv_json(ws) == {"type": "connection_established"}
    _send_json(ws, {"type": "ping"})
    assert _recv_json(ws) == {"type": "pong"}
    _send_json(ws, {"type": "message", "content": "early"})
    assert _recv_json(ws) == {"type": "error", "error": "not authenticated"}
    metrics = scrape(server.metrics_url)
    assert metrics["refserver_active_connections"] == 1 and metrics["refserver_active_agents"] == 0
    _send_json(ws, {"type": "auth", "token": "whatever"})
    assert _recv_json(ws) == {"type": "auth_ok"}
    assert scrape(server.metrics_url)["refserver_active_agents"] == 1
    _send_json(ws, {"type": "message", "content": "hello agent"})
    assert _recv_json(ws) == {"type": "agent_response", "content": "hello agent"}
    ws.close()
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 0)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)


def test_echo_mode_sends_no_greeting(start_server: StartServer) -> None:
    """Without --protocol the first frame a client gets is the echo of its own message."""
    server = start_server()
    ws = connect(server.url)
    ws.send('{"type": "ping"}')
    assert ws.recv() == '{"type": "ping"}'
    ws.close()


def test_wrong_token_gets_auth_failed_and_4401(start_server: StartServer) -> None:
    """With REFSERVER_AUTH_TOKEN set, a wrong auth token gets auth_failed, then close 4401, and no agent."""
    server = start_server("--protocol", "app", env={AUTH_TOKEN_ENV: TOKEN})
    ws = connect(server.url)  # the handshake needs no token in app mode: auth is in-band
    assert _recv_json(ws) == {"type": "connection_established"}
    _send_json(ws, {"type": "auth", "token": "wrong"})
    assert _recv_json(ws) == {"type": "auth_failed"}
    opcode, frame = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame[:2], "big") == 4401
    ws.sock.close()
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    assert scrape(server.metrics_url)["refserver_active_agents"] == 0
    _open_session(server.url, TOKEN).close()
    assert TOKEN not in server.stderr_text()


@pytest.mark.parametrize("leak", [True, False])
def test_leak_agents_on_drop_in_app_mode(start_server: StartServer, leak: bool) -> None:
    """In app mode --leak-agents-on-drop keeps the agents of dropped sessions; clean closes still free theirs."""
    server = start_server("--protocol", "app", *(["--leak-agents-on-drop"] if leak else []))
    for _ in range(3):
        _drop(_open_session(server.url))
    _open_session(server.url).close()
    wait_for_metric(server.metrics_url, "refserver_connections_total", lambda v: v == 4)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == (3 if leak else 0))


def test_dropped_unauthenticated_connection_leaks_no_agent(start_server: StartServer) -> None:
    """A connection dropped before auth never had an agent, so even --leak-agents-on-drop keeps none."""
    server = start_server("--protocol", "app", "--leak-agents-on-drop")
    ws = connect(server.url)
    assert _recv_json(ws) == {"type": "connection_established"}
    _drop(ws)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    assert scrape(server.metrics_url)["refserver_active_agents"] == 0


def _rss_growth_bytes(start_server: StartServer, *args: str) -> float:
    server = start_server("--protocol", "app", *args)
    return rss_growth_bytes(
        server.metrics_url, lambda: _open_session(server.url).close(), LEAK_CONNECTIONS, "refserver_active_agents"
    )


def test_leak_memory_kb_grows_rss_in_app_mode(start_server: StartServer) -> None:
    """In app mode --leak-memory-kb N still grows RSS by about N KiB per connection; without it RSS stays flat."""
    leaking = _rss_growth_bytes(start_server, "--leak-memory-kb", str(LEAK_KB))
    healthy = _rss_growth_bytes(start_server)
    assert_only_the_leak_grew_rss(leaking, healthy, LEAK_KB * 1024 * LEAK_CONNECTIONS)  # 50 MiB
