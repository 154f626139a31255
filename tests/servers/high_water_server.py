"""A healthy WebSocket echo server whose memory rises with concurrency, then stays flat.

Each open connection takes a 256 KiB buffer from a pool and gives it back when it closes;
the pool never shrinks. So the server's memory is a high-water mark set by the most
connections open at once (as glibc's arenas, V8's or a JVM's heap keep what peak
concurrency made them grow to): reached in the first seconds of flapping, flat after.
`--leak-kb N` adds a real leak on top: N KiB kept per connection, forever.

Run as `python -m tests.servers.high_water_server [--leak-kb N]`; it prints `ready port=<PORT>`
and serves on 127.0.0.1 until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

BUFFER_BYTES = 256 * 1024  # one pooled buffer per open connection
PAGE_BYTES = 4096


def _resident(size: int) -> bytearray:
    """`size` bytes, every page written so that it counts in the resident memory."""
    buffer = bytearray(size)
    buffer[::PAGE_BYTES] = b"\x01" * len(range(0, size, PAGE_BYTES))
    return buffer


class HighWaterServer:
    """The echo handler with its buffer pool (and the optional leak)."""

    def __init__(self, leak_kb: int) -> None:
        self.free: list[bytearray] = []  # pooled buffers no connection holds now; never freed
        self.leak_bytes = leak_kb * 1024  # kept per connection, when leaking
        self.leaked: list[bytearray] = []  # the leak

    async def handle(self, connection: ServerConnection) -> None:
        """Hold a pooled buffer while the connection is open, and echo every message."""
        buffer = self.free.pop() if self.free else _resident(BUFFER_BYTES)
        if self.leak_bytes:
            self.leaked.append(_resident(self.leak_bytes))
        try:
            async for message in connection:
                await connection.send(message)
        except ConnectionClosed:
            pass  # a client that dropped without a close frame: the buffer goes back all the same
        finally:
            self.free.append(buffer)


async def main(leak_kb: int) -> None:
    """Serve until SIGTERM."""
    server = HighWaterServer(leak_kb)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(server.handle, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        print(f"ready port={port}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.servers.high_water_server")
    parser.add_argument("--leak-kb", type=int, default=0, help="KiB leaked per connection (default 0)")
    asyncio.run(main(parser.parse_args().leak_kb))
