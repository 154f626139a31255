"""`--protocol socketio` on a real server, driven by python-socketio's client: connect, welcome, acks, pings, agents."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import socketio
import websocket

from refserver.auth import AUTH_TOKEN_ENV
from tests.refserver.helpers import DEADLINE_S, StartServer, connect, scrape, wait_for_metric

TOKEN = "tok-socketio-5c2e71"

# A python-socketio client in a process of its own, so the test can kill it (-9): a client that
# vanishes without a Socket.IO DISCONNECT or a close frame.
KILLED_CLIENT = """
import sys, socketio
sio = socketio.Client(reconnection=False)
sio.connect(sys.argv[1], transports=["websocket"], wait_timeout=5)
print(sio.call("chat", {"text": "hi"}, timeout=5), flush=True)
sys.stdin.read()
"""


def _http_url(server_url: str) -> str:
    return server_url.replace("ws://", "http://", 1)


def _client() -> socketio.Client:
    return socketio.Client(reconnection=False)


def _connect(client: socketio.Client, url: str, **kwargs: object) -> None:
    client.connect(_http_url(url), transports=["websocket"], wait_timeout=DEADLINE_S, **kwargs)


def test_connect_gets_welcome_and_chat_is_acknowledged(start_server: StartServer) -> None:
    """python-socketio connects over WebSocket, gets `welcome`, `chat` is acked {"ok": true}, the agent lives."""
    server = start_server("--protocol", "socketio")
    client = _client()
    welcome: list[object] = []
    got_welcome = threading.Event()

    @client.on("welcome")
    def on_welcome(data: object) -> None:
        welcome.append(data)
        got_welcome.set()

    _connect(client, server.url)
    try:
        assert got_welcome.wait(DEADLINE_S)
        assert isinstance(welcome[0], dict) and welcome[0]["sid"] == client.get_sid()
        assert client.call("chat", {"text": "hi"}, timeout=DEADLINE_S) == {"ok": True}
        assert client.call("nope", timeout=DEADLINE_S) == {"ok": False, "error": "unknown event"}
        metrics = scrape(server.metrics_url)
        assert metrics["refserver_active_agents"] == 1 and metrics["refserver_active_connections"] == 1
    finally:
        client.disconnect()
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 0)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)


def test_other_namespaces_are_served_and_message_is_echoed(start_server: StartServer) -> None:
    """A client on /chat gets its own agent; the `message` event comes back to it."""
    server = start_server("--protocol", "socketio")
    client = _client()
    echoed = threading.Event()
    client.on("message", lambda data: echoed.set() if data == {"x": 1} else None, namespace="/chat")
    _connect(client, server.url, namespaces=["/chat"])
    try:
        client.send({"x": 1}, namespace="/chat")
        assert echoed.wait(DEADLINE_S)
        assert scrape(server.metrics_url)["refserver_active_agents"] == 1
    finally:
        client.disconnect()
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 0)


def test_with_a_token_set_the_connect_auth_payload_must_carry_it(start_server: StartServer) -> None:
    """REFSERVER_AUTH_TOKEN: a wrong auth payload gets CONNECT_ERROR and no agent; the right one connects."""
    server = start_server("--protocol", "socketio", env={AUTH_TOKEN_ENV: TOKEN})
    refused = _client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        _connect(refused, server.url, auth={"token": "wrong"})
    assert scrape(server.metrics_url)["refserver_active_agents"] == 0
    accepted = _client()
    _connect(accepted, server.url, auth={"token": TOKEN})
    try:
        assert scrape(server.metrics_url)["refserver_active_agents"] == 1
    finally:
        accepted.disconnect()


def test_the_server_pings_and_a_client_that_answers_stays(start_server: StartServer) -> None:
    """With a 100 ms ping interval a python-socketio client, which answers pings, is still served after 1 s."""
    server = start_server("--protocol", "socketio", "--ping-interval-ms", "100", "--ping-timeout-ms", "300")
    client = _client()
    _connect(client, server.url)
    try:
        time.sleep(1.0)  # ten ping intervals, more than three ping timeouts
        assert client.connected
        assert client.call("chat", "still here", timeout=DEADLINE_S) == {"ok": True}
    finally:
        client.disconnect()


def test_pings_come_every_interval_and_silence_is_cut(start_server: StartServer) -> None:
    """The open packet announces 100/200 ms; a ping arrives; a client that never answers is cut."""
    server = start_server("--protocol", "socketio", "--ping-interval-ms", "100", "--ping-timeout-ms", "200")
    ws = connect(server.url + "socket.io/?EIO=4&transport=websocket")
    opened = ws.recv()
    assert opened.startswith("0")
    handshake = json.loads(opened[1:])
    assert (handshake["pingInterval"], handshake["pingTimeout"], handshake["upgrades"]) == (100, 200, [])
    started = time.monotonic()
    assert ws.recv() == "2"
    assert time.monotonic() - started >= 0.05
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:  # no pong: the server cuts the socket after the ping timeout
            if ws.recv() in ("", None):
                raise ConnectionError("closed")
    ws.close()


@pytest.mark.parametrize(("leak", "agents_after"), [(True, 1), (False, 0)])
def test_a_client_killed_without_disconnect_leaks_its_agent_only_with_the_fault(
    start_server: StartServer, leak: bool, agents_after: int
) -> None:
    """A python-socketio client killed with -9 keeps its agent under --leak-agents-on-drop and frees it otherwise."""
    server = start_server("--protocol", "socketio", *(["--leak-agents-on-drop"] if leak else []))
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, _http_url(server.url)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "{'ok': True}"
        assert scrape(server.metrics_url)["refserver_active_agents"] == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(DEADLINE_S)
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    assert scrape(server.metrics_url)["refserver_active_agents"] == agents_after


def test_a_clean_socketio_disconnect_frees_the_agent_even_with_the_fault(start_server: StartServer) -> None:
    """With --leak-agents-on-drop a client that sends its DISCONNECT (python-socketio's disconnect) leaks nothing."""
    server = start_server("--protocol", "socketio", "--leak-agents-on-drop")
    for _ in range(3):
        client = _client()
        _connect(client, server.url)
        client.disconnect()
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 0)


def _raw_session(server_url: str) -> websocket.WebSocket:
    ws = connect(server_url + "socket.io/?EIO=4&transport=websocket")
    assert ws.recv().startswith("0")
    ws.send("40")
    assert ws.recv().startswith('40{"sid":')
    assert ws.recv().startswith('42["welcome",')
    return ws


def test_a_raw_drop_leaks_and_a_close_frame_or_disconnect_frees_under_the_fault(start_server: StartServer) -> None:
    """Raw frames under the fault: a vanished client keeps its agent; a close frame or a DISCONNECT frees it."""
    server = start_server("--protocol", "socketio", "--leak-agents-on-drop")
    dropped = _raw_session(server.url)
    dropped.sock.shutdown(socket.SHUT_RDWR)  # vanish: no DISCONNECT, no close frame
    dropped.sock.close()
    closed = _raw_session(server.url)
    closed.close()  # a close frame, no DISCONNECT: the client did say goodbye
    disconnected = _raw_session(server.url)
    disconnected.send("41")  # the namespace DISCONNECT frees the agent at once, the socket stays
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 1)
    assert scrape(server.metrics_url)["refserver_active_connections"] == 1
    disconnected.close()
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    assert scrape(server.metrics_url)["refserver_active_agents"] == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [("ws", 404), ("socket.io/?EIO=3&transport=websocket", 400), ("socket.io/?EIO=4&transport=polling", 400)],
)
def test_only_engine_io_4_over_websocket_at_socket_io_is_served(
    start_server: StartServer, path: str, status: int
) -> None:
    """Other paths get 404; other Engine.IO versions or transports get 400."""
    server = start_server("--protocol", "socketio")
    with pytest.raises(websocket.WebSocketBadStatusException) as error:
        connect(server.url + path)
    assert error.value.status_code == status
