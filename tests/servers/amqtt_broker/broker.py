"""amqtt (PyPI) as a broker for the tests: MQTT 3.1.1 over WebSocket on 127.0.0.1, run by its own venv's Python.

Not imported by the pack's tests: `python -m tests.servers.amqtt_broker` runs this file with the
interpreter of `.venv` beside it (amqtt pins a websockets the pack does not use). Prints
`app-server ready port=<PORT> pid=<PID>`, then `metrics port=<PORT>`; GET /metrics on the
metrics port gives `mqtt_sessions`, the sessions amqtt holds (connected, and persistent ones of
clients gone). MQTT_BROKER_USER and MQTT_BROKER_PASSWORD (environment) switch credentials on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin

USER = os.environ.get("MQTT_BROKER_USER")
PASSWORD = os.environ.get("MQTT_BROKER_PASSWORD")


class EnvPasswordAuth(BaseAuthPlugin):
    """Accepts everyone without MQTT_BROKER_USER, else only that user name with that password."""

    async def authenticate(self, *, session) -> bool:  # type: ignore[no-untyped-def,override]
        if USER is None:
            return True
        password = session.password.decode() if isinstance(session.password, bytes) else session.password
        return bool(session.username == USER and password == PASSWORD)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def main() -> None:
    port = _free_port()
    config = {
        "listeners": {"default": {"type": "ws", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"broker.EnvPasswordAuth": {}},
    }
    broker = Broker(config)
    await broker.start()

    async def metrics(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = f"# TYPE mqtt_sessions gauge\nmqtt_sessions {len(broker._sessions)}\n".encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(metrics, "127.0.0.1", 0)
    metrics_port = server.sockets[0].getsockname()[1]
    # One write: the readiness line first (what childproc.ready reads), the metrics port with it.
    sys.stdout.write(f"app-server ready port={port} pid={os.getpid()}\nmetrics port={metrics_port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    await broker.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    asyncio.run(main())
