"""The Django Channels app: JSON echo for clients that send a matching Origin, HTTP 403 for the others."""

from __future__ import annotations

import pytest
import websocket

from tests.test_servers.helpers import connect, drop, recv_json, scrape, send_json, wait_for_metric

AGENTS = "app_agents_active"


def test_stock_client_is_echoed_and_its_agent_freed(start_app_server) -> None:
    """websocket-client's default handshake (Origin from the URL) is accepted; JSON is echoed; the agent is freed."""
    server = start_app_server("django_channels")
    ws = connect(server.url)
    send_json(ws, {"type": "message", "content": "hi", "n": [1, 2]})
    assert recv_json(ws) == {"type": "message", "content": "hi", "n": [1, 2]}
    ws.send("not json")
    assert recv_json(ws) == {"type": "error", "error": "not JSON"}
    assert scrape(server.metrics_url)[AGENTS] == 1
    ws.close()
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)


@pytest.mark.parametrize(
    "origin_options",
    [{"suppress_origin": True}, {"origin": "http://evil.example"}, {"origin": "null"}],
    ids=["no-origin", "other-host", "null"],
)
def test_handshake_without_a_matching_origin_gets_403(start_app_server, origin_options: dict[str, object]) -> None:
    """AllowedHostsOriginValidator refuses a missing or foreign Origin with HTTP 403, before any consumer exists."""
    server = start_app_server("django_channels")
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        connect(server.url, **origin_options)
    assert excinfo.value.status_code == 403
    assert scrape(server.metrics_url)[AGENTS] == 0


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}", "https://localhost"])
def test_allowed_hosts_pass_with_any_port_or_scheme(start_app_server, origin: str) -> None:
    """An Origin naming 127.0.0.1 or localhost passes, whatever its port or scheme."""
    server = start_app_server("django_channels")
    ws = connect(server.url, origin=origin.format(port=server.port))
    send_json(ws, {"ok": True})
    assert recv_json(ws) == {"ok": True}
    ws.close()


@pytest.mark.parametrize("fault", [None, "leak-agents-on-drop"])
def test_leak_agents_on_drop(start_app_server, fault: str | None) -> None:
    """With leak-agents-on-drop the consumers of dropped clients keep their agents; clean closes free theirs."""
    server = start_app_server("django_channels", *(["--fault", fault] if fault else []))
    for _ in range(2):
        drop(connect(server.url))
    connect(server.url).close()
    wait_for_metric(server.metrics_url, "app_connections_total", lambda v: v == 3)
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == (2 if fault else 0))
