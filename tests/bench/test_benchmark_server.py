"""The benchmark's own server (`bench/echo_server.py`): it echoes, and in socketio mode a real Socket.IO client gets
the refserver's answers from it."""

from __future__ import annotations

import threading

import socketio
import websocket

from tests.refserver.helpers import DEADLINE_S


def test_it_echoes_text_and_answers_a_close(bench_server) -> None:
    port = bench_server()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=DEADLINE_S)
    try:
        ws.send("flap")
        assert ws.recv() == "flap"
    finally:
        ws.close()  # waits for the server's close frame


def test_in_socketio_mode_a_socketio_client_is_welcomed_and_acknowledged(bench_server) -> None:
    """python-socketio connects over WebSocket, gets `welcome`, `chat` is acked {"ok": true}: as by the refserver."""
    port = bench_server("--protocol", "socketio")
    client = socketio.Client(reconnection=False)
    welcomed = threading.Event()
    client.on("welcome", lambda data: welcomed.set() if data.get("sid") == client.get_sid() else None)
    client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=DEADLINE_S)
    try:
        assert welcomed.wait(DEADLINE_S)
        assert client.call("chat", {"text": "flap bench"}, timeout=DEADLINE_S) == {"ok": True}
        assert client.call("nope", timeout=DEADLINE_S) == {"ok": False, "error": "unknown event"}
    finally:
        client.disconnect()
