"""The GraphQL-over-WebSocket server, spoken by hand (graphql-transport-ws over websocket-client)."""

from __future__ import annotations

import time

import pytest
import websocket

from tests.servers import AUTH_TOKEN_ENV
from tests.test_servers.helpers import (
    AGENTS,
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

SUBPROTOCOL = "graphql-transport-ws"
TOKEN = "tok-gql-0b8e44"


def _open(url: str) -> websocket.WebSocket:
    ws = connect(url, subprotocols=[SUBPROTOCOL])
    assert ws.getsubprotocol() == SUBPROTOCOL
    return ws


def _session(url: str, payload: dict[str, object] | None = None) -> websocket.WebSocket:
    ws = _open(url)
    send_json(ws, {"type": "connection_init", **({"payload": payload} if payload is not None else {})})
    assert recv_json(ws) == {"type": "connection_ack"}
    return ws


def _subscribe(ws: websocket.WebSocket, operation_id: str, query: str) -> None:
    send_json(ws, {"id": operation_id, "type": "subscribe", "payload": {"query": query}})


def test_subscriptions_ping_and_agent_lifetime(start_app_server) -> None:
    """hello yields world once, count(to: 3) yields 1..3, pings get pongs; the agent lives from ack to close."""
    server = start_app_server("graphql_server")
    ws = _open(server.url)
    assert scrape(server.metrics_url)[AGENTS] == 0  # no agent before connection_init
    send_json(ws, {"type": "connection_init"})
    assert recv_json(ws) == {"type": "connection_ack"}
    assert scrape(server.metrics_url)[AGENTS] == 1
    _subscribe(ws, "1", "subscription { hello }")
    assert recv_json(ws) == {"id": "1", "type": "next", "payload": {"data": {"hello": "world"}}}
    assert recv_json(ws) == {"id": "1", "type": "complete"}
    _subscribe(ws, "2", "subscription { count(to: 3) }")
    for number in (1, 2, 3):
        assert recv_json(ws) == {"id": "2", "type": "next", "payload": {"data": {"count": number}}}
    assert recv_json(ws) == {"id": "2", "type": "complete"}
    send_json(ws, {"type": "ping"})
    assert recv_json(ws) == {"type": "pong"}
    ws.close()
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)
    drop(_session(server.url))  # healthy: a vanished client's agent is removed too
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)


def test_greetings_stream_until_the_client_completes(start_app_server) -> None:
    """greetings streams until the client sends complete; the connection then stays usable."""
    server = start_app_server("graphql_server")
    ws = _session(server.url)
    _subscribe(ws, "g", "subscription { greetings(intervalMs: 50) }")
    for number in (1, 2, 3):
        assert recv_json(ws) == {"id": "g", "type": "next", "payload": {"data": {"greetings": f"hello {number}"}}}
    send_json(ws, {"id": "g", "type": "complete"})
    send_json(ws, {"type": "ping"})
    while (message := recv_json(ws)) != {"type": "pong"}:
        assert isinstance(message, dict) and message["id"] == "g"  # ones already in flight
    ws.close()


def test_without_the_subprotocol_closes_4406(start_app_server) -> None:
    """A client that does not offer graphql-transport-ws is closed with 4406 right after the 101."""
    server = start_app_server("graphql_server")
    ws = connect(server.url)
    assert close_code(ws) == 4406
    ws.close()


def test_init_payload_token_is_required_when_set(start_app_server) -> None:
    """With APP_AUTH_TOKEN set, connection_init without the token closes 4403; with it (any key) it is acked."""
    server = start_app_server("graphql_server", env={AUTH_TOKEN_ENV: TOKEN})
    for payload in (None, {"token": "wrong"}):
        ws = _open(server.url)
        send_json(ws, {"type": "connection_init", **({"payload": payload} if payload else {})})
        assert close_code(ws) == 4403
        ws.close()
    for payload in ({"token": TOKEN}, {"authToken": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}):
        _session(server.url, payload).close()
    assert TOKEN not in server.stderr_text()


def test_reject_init_closes_4403_and_creates_no_agent(start_app_server) -> None:
    """With reject-init every connection_init is answered with close 4403 and no agent is created."""
    server = start_app_server("graphql_server", "--fault", "reject-init")
    ws = _open(server.url)
    send_json(ws, {"type": "connection_init"})
    assert close_code(ws) == 4403
    ws.close()
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    assert scrape(server.metrics_url)[AGENTS] == 0


def test_init_timeout_closes_4408(start_app_server) -> None:
    """Without connection_init within --init-timeout-ms the server closes with 4408, not before."""
    server = start_app_server("graphql_server", "--init-timeout-ms", "300")
    started = time.monotonic()
    ws = _open(server.url)
    assert close_code(ws) == 4408
    assert time.monotonic() - started >= 0.3
    ws.close()


@pytest.mark.parametrize("fault", [None, "leak-agents-on-drop", "leak-agents"])
def test_agent_leaks_by_fault(start_app_server, fault: str | None) -> None:
    """leak-agents-on-drop keeps only dropped connections' agents; leak-agents keeps all; healthy keeps none."""
    server = start_app_server("graphql_server", *(["--fault", fault] if fault else []))
    for _ in range(3):
        drop(_session(server.url))
    for _ in range(2):
        _session(server.url).close()
    wait_for_agents_kept(server.metrics_url, fault)


def test_leak_memory_grows_rss(start_app_server) -> None:
    """With leak-memory every acknowledged connection leaves --leak-memory-kb KiB resident; without it RSS is flat."""
    assert_leak_memory_grows_rss(start_app_server, "graphql_server", lambda server: _session(server.url).close())
