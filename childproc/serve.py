"""Serve until SIGTERM or SIGINT: the life of a child program's asyncio server."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Listener(Protocol):
    """What both ``asyncio.Server`` and websockets' ``Server`` offer."""

    @property
    def sockets(self) -> tuple[socket.socket, ...]: ...

    def close(self) -> None: ...


_Listener = TypeVar("_Listener", bound=Listener)


async def serve_until_signalled(
    start: Callable[[], Awaitable[_Listener]],
    *,
    announce: Callable[[int], None],
    stop_signals: Iterable[signal.Signals] = STOP_SIGNALS,
) -> _Listener:
    """Start serving, call ``announce(port)``, wait for one of ``stop_signals``, stop accepting.

    Returns the closed server; draining its open connections is the caller's job.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
    server = await start()
    announce(server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()
    return server
