"""A WebSocket echo server that never closes a connection the client left without a close frame.

Its sockets pile up in CLOSE_WAIT: the bug `lingering_connections` exists to catch.
Run as `python -m tests.servers.leaky_socket_server`; it prints `ready port=<PORT>` and serves
until SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

from tests.servers.raw_ws_server import RawWsServer, ServedConnection

_KEPT: list[socket.socket] = []  # the leaked sockets, never closed


class LeakySocketServer(RawWsServer):
    """Echoes like RawWsServer, but keeps (and never closes) every socket whose client left."""

    def _serve(self, sock: socket.socket, record: ServedConnection) -> None:
        # A dup keeps the connection open after RawWsServer closes its own handle:
        # the client's FIN is never answered, so the server side stays in CLOSE_WAIT.
        _KEPT.append(sock.dup())
        super()._serve(sock, record)


def main() -> None:
    """Serve on 127.0.0.1 until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LeakySocketServer() as server:
        print(f"ready port={server.port}", flush=True)
        stop.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
