"""The asyncio I/O of the proxy: accept, dial upstream, move bytes when toxics.py says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from childproc import serve as childproc_serve
from childproc.bind_address import resolve_bind_address
from faultproxy.cli import ProxyConfig
from faultproxy.launch import READY_LINE
from faultproxy.toxics import KIB, DirectionSchedule, ResetPeer, derive_rng

logger = logging.getLogger("faultproxy")

READ_CHUNK_BYTES = 64 * KIB
# Per direction: beyond this much delayed data we stop reading, so TCP pushes back on the sender.
MAX_QUEUED_BYTES = 1024 * KIB
CONNECT_TIMEOUT_S = 5.0
# Bounds shutdown: open connections get this long to unwind after being cancelled.
SHUTDOWN_TIMEOUT_S = 1.0


@dataclass
class ProxyStats:
    """Counters of one proxy process, logged when it stops."""

    connections_accepted: int = 0  # client connections accepted
    connections_reset: int = 0  # connections the reset_peer toxic reset
    upstream_failures: int = 0  # accepted connections whose upstream could not be dialled
    bytes_to_upstream: int = 0  # client bytes written to the server
    bytes_to_client: int = 0  # server bytes written to clients

    def count_to_upstream(self, size: int) -> None:
        """Add bytes written to the server."""
        self.bytes_to_upstream += size

    def count_to_client(self, size: int) -> None:
        """Add bytes written to a client."""
        self.bytes_to_client += size

    def summary(self) -> str:
        """One log line with every counter."""
        return (
            f"{self.connections_accepted} connections accepted, {self.connections_reset} reset, "
            f"{self.upstream_failures} upstream failures, {self.bytes_to_upstream} bytes to upstream, "
            f"{self.bytes_to_client} bytes to clients"
        )


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the kernel sends RST instead of FIN and drops unsent data."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _half_close(writer: asyncio.StreamWriter) -> None:
    # Pass the sender's FIN on; the other direction keeps flowing.
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


class _Pipe:
    """One direction of one connection: read chunks, write each slice at its release time."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        schedule: DirectionSchedule,
        count: Callable[[int], None],
        on_first_bytes: Callable[[], bool] | None = None,
    ) -> None:
        self._reader = reader  # the side we read from
        self._writer = writer  # the side we write to
        self._schedule = schedule  # latency and bandwidth decisions of this direction
        self._count = count  # adds bytes written to the proxy's stats
        self._on_first_bytes = on_first_bytes  # called once; True means: swallow the chunk and stop reading
        self._queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()  # slices in order; None = EOF
        self._queued_bytes = 0  # bytes read but not yet written
        self._room = asyncio.Event()  # set while _queued_bytes is below MAX_QUEUED_BYTES
        self._room.set()

    async def run(self) -> None:
        """Move bytes until EOF, then pass the EOF on; raises on a socket error."""
        if self._schedule.is_pass_through:
            await self._feed(direct=True)
        else:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._feed(direct=False))
                group.create_task(self._drain())
        _half_close(self._writer)

    async def _feed(self, *, direct: bool) -> None:
        loop = asyncio.get_running_loop()
        while data := await self._reader.read(READ_CHUNK_BYTES):
            if self._on_first_bytes is not None:
                on_first_bytes, self._on_first_bytes = self._on_first_bytes, None
                if on_first_bytes():
                    await loop.create_future()  # never resolves: the reset cancels us
            if direct:
                self._writer.write(data)
                await self._writer.drain()
                self._count(len(data))
                continue
            offset = 0
            for release_at, length in self._schedule.schedule(loop.time(), len(data)):
                self._queue.put_nowait((release_at, data[offset : offset + length]))
                offset += length
            self._queued_bytes += len(data)
            while self._queued_bytes >= MAX_QUEUED_BYTES:
                self._room.clear()
                await self._room.wait()
        if not direct:
            self._queue.put_nowait(None)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while (item := await self._queue.get()) is not None:
            release_at, piece = item
            delay_s = release_at - loop.time()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            self._writer.write(piece)
            await self._writer.drain()
            self._count(len(piece))
            self._queued_bytes -= len(piece)
            if self._queued_bytes < MAX_QUEUED_BYTES:
                self._room.set()


class FaultProxy:
    """Accepts clients, dials the upstream for each, and applies the toxics in between."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config  # parsed once by the CLI
        self.stats = ProxyStats()  # logged at stop
        self._reset_peer = ResetPeer(config.toxics.reset_pct, config.toxics.reset_after_ms)  # the reset policy
        self._reset_rng = derive_rng(config.seed, "reset")  # one draw per accepted connection, in accept order
        self._handlers: set[asyncio.Task[None]] = set()  # running connection handlers, cancelled at stop

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """Proxy one accepted client connection until either side ends it."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._proxy(client_reader, client_writer)
        except asyncio.CancelledError:
            # The proxy is stopping; this is the top of the task, and Python 3.11's stream
            # callback would log a cancelled handler as an error.
            pass
        finally:
            self._handlers.discard(task)

    async def close_all(self, timeout_s: float) -> None:
        """Cancel every open connection and wait up to ``timeout_s`` for them to unwind."""
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=timeout_s)

    async def _proxy(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        config = self.config
        index = self.stats.connections_accepted
        self.stats.connections_accepted += 1
        chosen_for_reset = self._reset_peer.chooses(self._reset_rng)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(config.upstream_host, config.upstream_port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            self.stats.upstream_failures += 1
            logger.warning(
                "connection %d: cannot reach upstream %s port %d: %s",
                index,
                config.upstream_host,
                config.upstream_port,
                str(exc) or "timed out",
            )
            client_writer.transport.abort()
            return
        except asyncio.CancelledError:
            client_writer.transport.abort()  # the proxy stopped while we dialled
            raise

        loop = asyncio.get_running_loop()
        reset_due = asyncio.Event()
        reset_timer: asyncio.TimerHandle | None = None

        def on_first_client_bytes() -> bool:
            nonlocal reset_timer
            if not chosen_for_reset:
                return False
            reset_timer = loop.call_at(self._reset_peer.reset_at(loop.time()), reset_due.set)
            return self._reset_peer.swallows_first_chunk

        to_upstream = _Pipe(
            client_reader,
            upstream_writer,
            DirectionSchedule(config.toxics, derive_rng(config.seed, "jitter", index, "upstream")),
            self.stats.count_to_upstream,
            on_first_client_bytes,
        )
        to_client = _Pipe(
            upstream_reader,
            client_writer,
            DirectionSchedule(config.toxics, derive_rng(config.seed, "jitter", index, "downstream")),
            self.stats.count_to_client,
        )
        pipes = {asyncio.create_task(to_upstream.run()), asyncio.create_task(to_client.run())}
        reset_wait = asyncio.create_task(reset_due.wait())
        outcome = "closed"
        try:
            pending: set[asyncio.Task[object]] = {*pipes, reset_wait}
            while pipes & pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if reset_wait in done:
                    outcome = "reset"
                    break
                failed = [task for task in done if task.exception() is not None]
                if failed:
                    outcome = f"error ({failed[0].exception()!r})"
                    break
        except asyncio.CancelledError:
            outcome = "cancelled"  # the proxy is stopping
            raise
        finally:
            if reset_timer is not None:
                reset_timer.cancel()
            for task in (*pipes, reset_wait):
                task.cancel()
            # Sockets first: a stop that cancels us while we reap the tasks must not skip this.
            self._finish(index, outcome, client_writer, upstream_writer)
            await asyncio.gather(*pipes, reset_wait, return_exceptions=True)

    def _finish(
        self, index: int, outcome: str, client_writer: asyncio.StreamWriter, upstream_writer: asyncio.StreamWriter
    ) -> None:
        if outcome == "closed":
            client_writer.close()
            upstream_writer.close()
        elif outcome == "cancelled":
            client_writer.transport.abort()
            upstream_writer.transport.abort()
        else:
            # A reset, or a socket error on one side that we pass on to the other as a reset.
            reset_connection(client_writer)
            reset_connection(upstream_writer)
        if outcome == "reset":
            self.stats.connections_reset += 1
        logger.debug("connection %d ended: %s", index, outcome)


async def serve_until_signalled(
    config: ProxyConfig,
    *,
    address: str,
    announce: Callable[[int], None],
    stop_signals: Iterable[signal.Signals] = childproc_serve.STOP_SIGNALS,
) -> ProxyStats:
    """Proxy until one of ``stop_signals`` arrives; call ``announce(port)`` once listening."""
    proxy = FaultProxy(config)
    await childproc_serve.serve_until_signalled(
        lambda: asyncio.start_server(proxy.handle, address, config.listen_port, backlog=1024),
        announce=announce,
        stop_signals=stop_signals,
    )
    await proxy.close_all(SHUTDOWN_TIMEOUT_S)
    return proxy.stats


def log_start(config: ProxyConfig, address: str, port: int) -> None:
    """Log the addresses, the seed and every enabled toxic."""
    logger.info(
        "faultproxy listening on %s port %d, upstream %s port %d (pid %d, seed %d)",
        address,
        port,
        config.upstream_host,
        config.upstream_port,
        os.getpid(),
        config.seed,
    )
    for toxic in config.toxics.describe():
        logger.info("toxic on: %s", toxic)


def run(config: ProxyConfig) -> int:
    """Proxy in this process until SIGTERM or SIGINT; return the exit code."""

    def announce(port: int) -> None:
        log_start(config, address, port)
        READY_LINE.announce(port, os.getpid())

    try:
        _, address = resolve_bind_address(config.listen_host, config.listen_port)
        stats = asyncio.run(serve_until_signalled(config, address=address, announce=announce))
    except OSError as exc:
        logger.error("cannot listen on %s port %d: %s", config.listen_host, config.listen_port, exc)
        return 1
    logger.info("faultproxy stopped: %s", stats.summary())
    return 0
