"""The agent-chat server: greeting, ping/pong, agent responses, query-token auth, and each fault visible."""

from __future__ import annotations

import json

import pytest
import websocket

from tests.servers import AUTH_TOKEN_ENV
from tests.test_servers.helpers import (
    AGENTS,
    DEADLINE_S,
    assert_leak_memory_grows_rss,
    close_code,
    connect,
    drop,
    recv_json,
    scrape,
    send_json,
    wait_for_agents_kept,
    wait_for_metric,
)

TOKEN = "tok-chat-61c2a9"


def _session(url: str) -> websocket.WebSocket:
    ws = connect(url)
    assert recv_json(ws) == {"type": "connection_established"}
    return ws


def test_healthy_conversation_and_agent_lifetime(start_app_server) -> None:
    """A session is greeted, gets pongs and agent responses, and its agent lives exactly as long as it."""
    server = start_app_server("agent_chat")
    ws = _session(server.url)
    assert scrape(server.metrics_url)[AGENTS] == 1
    send_json(ws, {"type": "ping"})
    assert recv_json(ws) == {"type": "pong"}
    send_json(ws, {"type": "message", "content": "hello"})
    reply = recv_json(ws)
    assert isinstance(reply, dict) and reply["type"] == "agent_response" and reply["content"] == "hello"
    send_json(ws, {"type": "subscribe"})
    assert recv_json(ws) == {"type": "error", "error": "unknown message type"}
    ws.close()
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)
    drop(_session(server.url))  # healthy: a vanished client's agent is removed too
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)
    assert scrape(server.metrics_url)["app_connections_total"] == 2


def test_query_token_is_required_when_set(start_app_server) -> None:
    """With APP_AUTH_TOKEN set, a handshake without the right ?token= gets HTTP 403 and creates no agent."""
    server = start_app_server("agent_chat", env={AUTH_TOKEN_ENV: TOKEN})
    for query in ("", "?token=wrong"):
        with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
            connect(server.url + query)
        assert excinfo.value.status_code == 403
    assert scrape(server.metrics_url)[AGENTS] == 0
    _session(f"{server.url}?token={TOKEN}").close()
    assert TOKEN not in server.stderr_text()


@pytest.mark.parametrize("fault", [None, "leak-agents-on-drop", "leak-agents"])
def test_agent_leaks_by_fault(start_app_server, fault: str | None) -> None:
    """leak-agents-on-drop keeps only the agents of dropped sessions; leak-agents keeps all; healthy keeps none."""
    server = start_app_server("agent_chat", *(["--fault", fault] if fault else []))
    for _ in range(3):
        drop(_session(server.url))
    for _ in range(2):
        _session(server.url).close()
    wait_for_agents_kept(server.metrics_url, fault)


def test_leak_memory_grows_rss(start_app_server) -> None:
    """With leak-memory every session leaves --leak-memory-kb KiB resident; without it RSS stays flat."""
    assert_leak_memory_grows_rss(start_app_server, "agent_chat", lambda server: _session(server.url).close())


def test_garble_answers_messages_with_non_json(start_app_server) -> None:
    """With garble the greeting and pongs stay JSON but agent responses are not JSON."""
    server = start_app_server("agent_chat", "--fault", "garble")
    ws = _session(server.url)
    send_json(ws, {"type": "ping"})
    assert recv_json(ws) == {"type": "pong"}
    send_json(ws, {"type": "message", "content": "hello"})
    with pytest.raises(json.JSONDecodeError):
        recv_json(ws)
    ws.close()


def test_close_1011_closes_three_of_four_sessions(start_app_server) -> None:
    """With close-1011 three of every four sessions are closed with 1011 right after the greeting."""
    server = start_app_server("agent_chat", "--fault", "close-1011")
    closed = 0
    for _ in range(8):
        ws = _session(server.url)
        send_json(ws, {"type": "ping"})
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            assert int.from_bytes(data[:2], "big") == 1011
            closed += 1
        else:
            assert json.loads(data) == {"type": "pong"}
        ws.close(timeout=DEADLINE_S)
    assert closed == 6
    ws = _session(start_app_server("agent_chat").url)  # healthy: never closed by the server
    send_json(ws, {"type": "ping"})
    assert recv_json(ws) == {"type": "pong"}
    ws.close()


def test_close_code_helper_reads_server_close(start_app_server) -> None:
    """The helper close_code() returns the code of the server's close frame (used by the other server tests)."""
    server = start_app_server("agent_chat", "--fault", "close-1011")
    _session(server.url).close()  # the first session of four is kept open
    ws = _session(server.url)
    assert close_code(ws) == 1011
    ws.close()
