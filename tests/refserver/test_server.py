"""The server process: readiness, echo, /metrics, limits, auth and shutdown."""

from __future__ import annotations

import signal
import socket
import urllib.request

import pytest
import websocket

from refserver.auth import AUTH_TOKEN_ENV
from tests.refserver.helpers import DEADLINE_S, StartServer, connect, scrape, wait_for_metric

TOKEN = "tok-7f3a9c51e2b84d06"


def test_ready_line_and_echo(start_server: StartServer) -> None:
    """The server prints one readiness line and echoes text and binary messages."""
    server = start_server()
    assert server.stdout_text() == f"refserver ready port={server.port} pid={server.pid}\n"
    assert server.pid == server.process.pid and server.port > 0
    ws = connect(server.url)
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.send_binary(b"\x00\xff")
    assert ws.recv() == b"\x00\xff"
    ws.close()


def test_metrics_follow_connection_lifetime(start_server: StartServer) -> None:
    """Active connections and agents are 1 while a client is connected and 0 after a clean close."""
    server = start_server()
    with urllib.request.urlopen(server.metrics_url, timeout=DEADLINE_S) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
    metrics = scrape(server.metrics_url)
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
        assert metrics[name] > 0
    assert metrics["refserver_active_connections"] == 0
    ws = connect(server.url)
    metrics = scrape(server.metrics_url)
    assert metrics["refserver_active_connections"] == 1
    assert metrics["refserver_active_agents"] == 1
    assert metrics["refserver_connections_total"] == 1
    ws.close()
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_with_exit_0(start_server: StartServer, sig: signal.Signals) -> None:
    """SIGTERM or SIGINT closes the server, even with a client connected, and it exits 0."""
    server = start_server()
    ws = connect(server.url)
    server.process.send_signal(sig)
    assert server.process.wait(DEADLINE_S) == 0
    assert "refserver stopped" in server.stderr_text()
    ws.sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S).close()


def test_oversized_message_closes_with_1009(start_server: StartServer) -> None:
    """A message above --max-message-bytes closes the connection with code 1009."""
    server = start_server("--max-message-bytes", "1000")
    ws = connect(server.url)
    ws.send("x" * 1000)
    assert ws.recv() == "x" * 1000
    ws.send("x" * 1001)
    opcode, frame = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame[:2], "big") == 1009
    ws.sock.close()


def test_max_connections_answers_503(start_server: StartServer) -> None:
    """Beyond --max-connections, handshakes get HTTP 503 until a slot frees up."""
    server = start_server("--max-connections", "2")
    clients = [connect(server.url), connect(server.url)]
    with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
        connect(server.url)
    assert excinfo.value.status_code == 503
    clients.pop().close()
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 1)
    clients.append(connect(server.url))
    assert scrape(server.metrics_url)['refserver_handshake_rejections_total{reason="capacity"}'] == 1
    for ws in clients:
        ws.close()


def test_auth_requires_token(start_server: StartServer) -> None:
    """With REFSERVER_AUTH_TOKEN set, handshakes need the token; /metrics does not."""
    server = start_server("--log-level", "DEBUG", env={AUTH_TOKEN_ENV: TOKEN})
    for url, header in [
        (server.url, None),
        (server.url, ["Authorization: Bearer wrong"]),
        (server.url + "?token=wrong", None),
    ]:
        with pytest.raises(websocket.WebSocketBadStatusException) as excinfo:
            connect(url, header=header)
        assert excinfo.value.status_code == 401
    for url, header in [(server.url, [f"Authorization: Bearer {TOKEN}"]), (server.url + f"?token={TOKEN}", None)]:
        ws = connect(url, header=header)
        ws.send("ok")
        assert ws.recv() == "ok"
        ws.close()
    metrics = scrape(server.metrics_url)
    assert metrics['refserver_handshake_rejections_total{reason="auth"}'] == 3
    wait_for_metric(server.metrics_url, "refserver_active_agents", lambda v: v == 0)
    assert server.stop() == 0
    output = server.stdout_text() + server.stderr_text()
    assert "auth on" in output and "agent 2" in output  # DEBUG logging was on
    assert TOKEN not in output


def test_ready_line_reports_the_requested_port(start_server: StartServer) -> None:
    """An explicit --port is the port reported and served."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server("--port", str(port))
    assert server.port == port
    connect(server.url).close()


def test_stop_is_quick_when_idle(start_server: StartServer) -> None:
    """stop() returns the exit code 0 and can be called twice."""
    server = start_server()
    assert server.stop() == 0
    assert server.stop() == 0
