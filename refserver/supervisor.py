"""``--workers N``: a parent that reserves the port and supervises N forked workers.

Each worker is a full server process listening on the same port with
SO_REUSEPORT, so the kernel spreads connections over them and every worker
has its own memory, file descriptors and /metrics (metrics are per process).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from childproc.bind_address import resolve_bind_address
from childproc.parent_death import die_with_parent
from refserver.cli import ServerConfig
from refserver.launch import READY_LINE
from refserver.server import log_start, serve_until_signalled

logger = logging.getLogger("refserver")

WORKER_READY_TIMEOUT_S = 15.0
WORKER_STOP_TIMEOUT_S = 2.0
_POLL_S = 0.1


def _reserve_port(host: str, port: int) -> tuple[socket.socket, str, int]:
    """Bind (without listening) a SO_REUSEPORT socket so the workers can all join its port."""
    family, address = resolve_bind_address(host, port)
    reservation = socket.socket(family, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Never listening, so the kernel never hands it a connection.
    reservation.bind((address, port))
    return reservation, address, reservation.getsockname()[1]


def _worker_main(
    config: ServerConfig,
    address: str,
    port: int,
    reservation: socket.socket,
    ready: multiprocessing.connection.Connection,
    parent_pid: int,
) -> None:
    # The parent's Python handlers were inherited; SIGTERM must kill us until asyncio takes it over.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Ctrl-C reaches the whole process group; only the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGTERM, expected_parent_pid=parent_pid)
    reservation.close()
    try:
        asyncio.run(
            serve_until_signalled(
                config,
                host=address,
                port=port,
                announce=lambda _: ready.send(os.getpid()),
                stop_signals=(signal.SIGTERM,),
                reuse_port=True,
            )
        )
    except OSError as exc:
        logger.error("worker cannot serve on %s port %d: %s", address, port, exc)
        sys.exit(1)
    logger.debug("worker %d stopped", os.getpid())


def _stop_workers(workers: list[BaseProcess]) -> None:
    for worker in workers:
        if worker.exitcode is None:
            worker.terminate()
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.exitcode is None:
            logger.warning("worker %s ignored SIGTERM; killing it", worker.pid)
            worker.kill()
            worker.join(1.0)


def run_workers(config: ServerConfig) -> int:
    """Start ``config.workers`` workers, announce readiness, supervise them until a signal."""
    stop_requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        reservation, address, port = _reserve_port(config.host, config.port)
    except OSError as exc:
        logger.error("cannot bind %s port %d: %s", config.host, config.port, exc)
        return 1
    # Fork, not spawn: nothing runs yet (no threads, no event loop), and it needs no importable __main__.
    context = multiprocessing.get_context("fork")
    sys.stdout.flush()
    sys.stderr.flush()
    workers: list[BaseProcess] = []
    pending: dict[multiprocessing.connection.Connection, BaseProcess] = {}
    for index in range(config.workers):
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(
            target=_worker_main,
            args=(config, address, port, reservation, sender, os.getpid()),
            name=f"refserver-worker-{index}",
        )
        worker.start()
        sender.close()
        workers.append(worker)
        pending[receiver] = worker

    exit_code = 0
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while pending and not stop_requested:
        if time.monotonic() > deadline:
            logger.error("workers not ready after %.0f s", WORKER_READY_TIMEOUT_S)
            exit_code = 1
            break
        multiprocessing.connection.wait(list(pending) + [w.sentinel for w in workers], timeout=_POLL_S)
        for receiver in [r for r in pending if r.poll()]:
            try:
                receiver.recv()
                del pending[receiver]
            except EOFError:
                pass  # died before announcing; reported below
        if any(worker.exitcode is not None for worker in workers):
            logger.error("a worker exited during startup")
            exit_code = 1
            break

    if exit_code == 0 and not stop_requested:
        log_start(config, address, port)
        READY_LINE.announce(port, os.getpid())
        while not stop_requested:
            multiprocessing.connection.wait([w.sentinel for w in workers], timeout=_POLL_S)
            crashed = [w for w in workers if w.exitcode is not None]
            if crashed:
                for gone in crashed:
                    logger.error("worker %s exited with code %s; stopping", gone.pid, gone.exitcode)
                exit_code = 1
                break

    _stop_workers(workers)
    reservation.close()
    logger.info("refserver stopped")
    return exit_code
