"""Make a server hold many sockets on its port, for the monitor-cost part of the benchmark.

Opens `--established` plain TCP connections and keeps them open, then runs WebSocket
cycles (the server closes first, so each leaves a TIME_WAIT entry on the server's side)
until the server's port has `--total` sockets; prints `ready <count>` and holds everything
until stdin closes or `--seconds` pass. Written as blocking code; the sockets are gevent's
(the pack's client imports Locust, which patches the socket module).

    python -m bench.hold_sockets --port PORT --established 5000 --total 10000 --seconds 120
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

from monitors.tcp_sockets import tcp_states_on_port
from scenarios.client import WsClient
from scenarios.conversation import echo_conversation
from scenarios.settings import ClientSettings
from scenarios.ws_session import WebSocketSession

CHECK_EVERY = 250  # cycles between two counts of the server's sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--established", type=int, default=5000)
    parser.add_argument("--total", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=120.0, help="give up and exit after this long")
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    held = []
    for _ in range(args.established):
        held.append(socket.create_connection(("127.0.0.1", args.port), timeout=5))
    url = f"ws://127.0.0.1:{args.port}/"
    cycles = 0
    count = sum(tcp_states_on_port(args.port).values())
    while count < args.total and time.monotonic() < deadline:
        session = WebSocketSession(url, timeout_s=5.0)
        session.connect()
        WsClient(ClientSettings()).talk(session, lambda *_: None).run(echo_conversation().hold)
        session.close_clean()
        cycles += 1
        if cycles % CHECK_EVERY == 0:
            count = sum(tcp_states_on_port(args.port).values())
    print(f"ready {count}", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main()
