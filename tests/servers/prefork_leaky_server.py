"""A pre-fork WebSocket echo server whose connections all land in one worker, the one that leaks.

The parent binds and listens on one socket, then forks two workers that inherit it (as
uvicorn's supervisor, a gunicorn arbiter or a Node cluster do). All three hold the
listening socket, but only the first worker accepts, and it keeps
`--leak-mb-per-connection` MiB for every connection; the second worker only holds the
socket. A monitor that watches one of the listeners, say the last one found, sees no
growth; one that watches the parent with all its children sees the leak.

Run as `python -m tests.servers.prefork_leaky_server [--leak-mb-per-connection N]`; it prints
`ready port=<PORT> accepting=<PID> idle=<PID>` once both workers run, and serves until
SIGTERM, which it passes on to the workers.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from websockets.sync.server import ServerConnection, serve

_LEAKED: list[bytearray] = []  # what the accepting worker keeps, never freed


def _accepting_worker(listener: socket.socket, leak_bytes: int) -> None:
    """Serve every connection on the shared socket, keeping `leak_bytes` per connection."""

    def echo(connection: ServerConnection) -> None:
        _LEAKED.append(bytearray(b"x" * leak_bytes))  # filled, so it is resident
        for message in connection:
            connection.send(message)

    with serve(echo, sock=listener) as server:
        signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
        server.serve_forever()


def _idle_worker() -> None:
    """Hold the inherited listening socket and never accept: a worker that gets no connection."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(1)


def _fork(run: Callable[[], None]) -> int:
    """Run `run` in a forked child; the child never returns into the parent's code."""
    pid = os.fork()
    if pid == 0:
        try:
            run()
        finally:
            os._exit(0)
    return pid


def main() -> None:
    """Listen on 127.0.0.1 port 0, fork the accepting worker, then the idle one; serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.servers.prefork_leaky_server")
    parser.add_argument("--leak-mb-per-connection", type=float, default=2.0)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listener.getsockname()[1]
    leak_bytes = int(args.leak_mb_per_connection * (1 << 20))
    # Forked in this order, the accepting worker has the lower pid: psutil, which names one
    # process per socket, names the last process holding it (the idle worker).
    accepting = _fork(lambda: _accepting_worker(listener, leak_bytes))
    idle = _fork(_idle_worker)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(f"ready port={port} accepting={accepting} idle={idle}", flush=True)
    while not stop:
        time.sleep(0.1)
    for worker in (accepting, idle):
        try:
            os.kill(worker, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    for worker in (accepting, idle):
        while time.monotonic() < deadline:
            done, _ = os.waitpid(worker, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(worker, signal.SIGKILL)
            os.waitpid(worker, 0)
    sys.exit(0)


if __name__ == "__main__":
    main()
