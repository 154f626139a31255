"""The Socket.IO server, through python-socketio's own client and through raw Engine.IO 4 frames."""

from __future__ import annotations

import json
import threading
import time

import pytest
import socketio
import websocket

from tests.servers import AUTH_TOKEN_ENV
from tests.test_servers.helpers import (
    AGENTS,
    DEADLINE_S,
    assert_leak_memory_grows_rss,
    connect,
    drop,
    scrape,
    wait_for_agents_kept,
    wait_for_metric,
)

TOKEN = "tok-sio-7d30c1"


def _raw_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"


def _raw_session(server, namespace: str = "/", auth: dict[str, str] | None = None) -> websocket.WebSocket:
    """Open the transport and connect one namespace by hand; return once the CONNECT answer and welcome came."""
    ws = connect(_raw_url(server))
    opening = ws.recv()
    assert opening.startswith("0{") and "pingInterval" in json.loads(opening[1:])
    prefix = "" if namespace == "/" else f"{namespace},"
    ws.send(f"40{prefix}{json.dumps(auth) if auth else ''}")
    answer = ws.recv()
    assert answer.startswith(f"40{prefix}{{"), answer
    welcome = ws.recv()
    assert welcome.startswith(f"42{prefix}") and json.loads(welcome[2 + len(prefix) :])[0] == "welcome"
    return ws


def _client() -> socketio.Client:
    return socketio.Client(reconnection=False, request_timeout=DEADLINE_S)


def test_official_client_gets_welcome_acks_and_frees_agents(start_app_server) -> None:
    """python-socketio connects both namespaces, gets a welcome on each, chat acks echo; agents live per session."""
    server = start_app_server("socketio_server")
    client = _client()
    welcomed: dict[str, object] = {}
    both_welcomed = threading.Event()

    def on_welcome(namespace: str):
        def handler(data: object) -> None:
            welcomed[namespace] = data
            if len(welcomed) == 2:
                both_welcomed.set()

        return handler

    for namespace in ("/", "/chat"):
        client.on("welcome", on_welcome(namespace), namespace=namespace)
    client.connect(server.http_url, transports=["websocket"], namespaces=["/", "/chat"], wait_timeout=DEADLINE_S)
    try:
        assert both_welcomed.wait(DEADLINE_S)
        for namespace in ("/", "/chat"):
            assert welcomed[namespace] == {"sid": client.get_sid(namespace)}
            ack = client.call("chat", {"text": "hi", "namespace": namespace}, namespace=namespace, timeout=DEADLINE_S)
            assert ack == {"ok": True, "echo": {"text": "hi", "namespace": namespace}}
        assert scrape(server.metrics_url)[AGENTS] == 2
    finally:
        client.disconnect()
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)


def test_auth_token_is_required_when_set(start_app_server) -> None:
    """With APP_AUTH_TOKEN set a CONNECT without the right token gets CONNECT_ERROR unauthorized; with it, CONNECT."""
    server = start_app_server("socketio_server", env={AUTH_TOKEN_ENV: TOKEN})
    for auth in ("", json.dumps({"token": "wrong"})):
        ws = connect(_raw_url(server))
        ws.recv()  # the Engine.IO open packet
        ws.send(f"40{auth}")
        assert ws.recv() == '44{"message":"unauthorized"}'
        ws.close()
    client = _client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.http_url, transports=["websocket"], auth={"token": "wrong"}, wait_timeout=DEADLINE_S)
    _raw_session(server, "/chat", {"token": TOKEN}).close()
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)
    assert TOKEN not in server.stderr_text()


def test_refuse_namespace_answers_connect_error(start_app_server) -> None:
    """With refuse-namespace every namespace connect gets a CONNECT_ERROR and no agent is created."""
    server = start_app_server("socketio_server", "--fault", "refuse-namespace")
    ws = connect(_raw_url(server))
    ws.recv()
    ws.send("40/chat,")
    assert ws.recv() == '44/chat,{"message":"namespace refused"}'
    ws.close()
    client = _client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.http_url, transports=["websocket"], wait_timeout=DEADLINE_S)
    assert scrape(server.metrics_url)[AGENTS] == 0


@pytest.mark.parametrize("fault", [None, "leak-agents-on-drop", "leak-agents"])
def test_agent_leaks_by_fault(start_app_server, fault: str | None) -> None:
    """leak-agents-on-drop keeps the agents of transports that vanished without a DISCONNECT; clean ones are freed."""
    server = start_app_server("socketio_server", *(["--fault", fault] if fault else []))
    for namespace in ("/", "/chat", "/"):
        drop(_raw_session(server, namespace))
    # Goodbyes: the Socket.IO DISCONNECT packet of the namespace, or the Engine.IO close packet.
    # (python-socketio's sync client is not used here: its disconnect() may close the socket
    # before its writer thread has sent them, and then the server sees a transport close.)
    for namespace, goodbye in (("/chat", "41/chat,"), ("/", "1")):
        clean = _raw_session(server, namespace)
        clean.send(goodbye)
        clean.close()
    wait_for_agents_kept(server.metrics_url, fault)


def test_server_pings_and_drops_a_silent_client(start_app_server) -> None:
    """The server pings every --ping-interval-s; an answered ping keeps the session, a missed one drops it."""
    server = start_app_server("socketio_server", "--ping-interval-s", "0.5", "--ping-timeout-s", "0.5")
    ws = _raw_session(server)
    started = time.monotonic()
    assert ws.recv() == "2"
    assert time.monotonic() - started >= 0.4
    ws.send("3")
    assert ws.recv() == "2"  # the session outlived the first ping
    assert scrape(server.metrics_url)[AGENTS] == 1
    # Not answering: the server gives up after the ping timeout.
    wait_for_metric(server.metrics_url, "app_connections_active", lambda v: v == 0)
    wait_for_metric(server.metrics_url, AGENTS, lambda v: v == 0)
    ws.shutdown()


def _said_goodbye(server) -> None:
    """One namespace session that ends with its DISCONNECT packet."""
    ws = _raw_session(server)
    ws.send("41")
    ws.close()


def test_leak_memory_grows_rss(start_app_server) -> None:
    """With leak-memory every namespace session leaves --leak-memory-kb KiB resident; without it RSS is flat."""
    assert_leak_memory_grows_rss(start_app_server, "socketio_server", _said_goodbye)
