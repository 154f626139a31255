"""A server with workers, found by its port, is watched whole: the listeners' common ancestor and all its children."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import websocket

from monitors.process_sampler import ProcessTreeSampler
from monitors.sample import SamplerError
from monitors.tcp_sockets import listening_pids
from tests.refserver.helpers import StartServer
from tests.servers.multi_worker_servers import prefork_leaky_server, uvicorn_workers

MB = 1 << 20
DEADLINE_S = 10.0 * float(os.environ.get("TEST_TIME_SCALE", "1"))


def tree_pids(sampler: ProcessTreeSampler) -> set[int]:
    """The pids of the tree the sampler watches, read now."""
    root = psutil.Process(sampler.pid)
    return {root.pid, *(child.pid for child in root.children(recursive=True))}


def test_every_process_holding_a_shared_listening_socket_is_listed() -> None:
    """A socket shared by a parent and two forked workers is one inode held by three processes: all three are listed."""
    with prefork_leaky_server() as server:
        assert listening_pids(server.port) == sorted([server.pid, *server.workers])


def test_uvicorn_with_two_workers_is_watched_as_one_server(tmp_path: Path) -> None:
    """`uvicorn --workers 2` found by its port: the supervisor is watched with both workers; describe() counts them."""
    with uvicorn_workers(tmp_path, workers=2) as server:
        sampler = ProcessTreeSampler.for_port(server.port)
        assert sampler.pid == server.pid
        assert set(server.workers) <= tree_pids(sampler)
        # The supervisor, two workers and multiprocessing's resource tracker.
        count = len(tree_pids(sampler))
        assert count >= 3
        assert f"({psutil.Process(server.pid).name()}, {count} processes), port {server.port}" in sampler.describe()


def test_the_bundled_servers_workers_are_watched_as_one_server(start_server: StartServer) -> None:
    """The refserver's SO_REUSEPORT workers each listen; their supervisor is watched with both."""
    server = start_server("--workers", "2")
    sampler = ProcessTreeSampler.for_port(server.port)
    workers = {child.pid for child in psutil.Process(server.pid).children()}
    assert sampler.pid == server.pid
    assert sampler.listeners == 2
    assert tree_pids(sampler) == {server.pid, *workers}
    assert "3 processes" in sampler.describe()


def test_a_leak_in_the_worker_found_last_is_seen() -> None:
    """All connections land in the first worker, which leaks; psutil names only the last holder; the growth is seen."""
    with prefork_leaky_server(leak_mb_per_connection=4) as server:
        sampler = ProcessTreeSampler.for_port(server.port)
        assert sampler.pid == server.pid
        before = sampler.sample(0.0)
        for _ in range(5):  # 5 connections x 4 MiB, all in the accepting worker
            ws = websocket.create_connection(server.url, timeout=DEADLINE_S)
            ws.send("hi")
            assert ws.recv() == "hi"
            ws.close()
        after = sampler.sample(1.0)
        assert after.rss_bytes - before.rss_bytes >= 18 * MB
        assert psutil.Process(server.workers[0]).memory_info().rss >= 20 * MB


@pytest.fixture
def reuseport_siblings() -> Iterator[int]:
    """Two unrelated processes, both children of this test, listening on one port with SO_REUSEPORT."""
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code = (
        "import socket, sys\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen(); print('ready', flush=True); sys.stdin.read()\n"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield port
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=DEADLINE_S)


def test_listeners_whose_common_ancestor_runs_the_load_generator_are_refused(reuseport_siblings: int) -> None:
    """Two listeners whose only common ancestor is this very process are not watched through it (it would count us)."""
    with pytest.raises(SamplerError) as caught:
        ProcessTreeSampler.for_port(reuseport_siblings)
    assert caught.value.fatal
    assert "unrelated processes listen" in caught.value.reason


def test_the_tree_is_reread_at_every_sample(tmp_path: Path) -> None:
    """A uvicorn worker killed and replaced by its supervisor: the next sample counts the new one, not the old."""
    with uvicorn_workers(tmp_path, workers=2) as server:
        sampler = ProcessTreeSampler.for_port(server.port)
        sampler.sample(0.0)
        gone = server.workers[0]
        psutil.Process(gone).kill()
        deadline = time.monotonic() + DEADLINE_S
        while len(workers := serving_workers(server.pid)) < 2 or gone in workers:
            assert time.monotonic() < deadline, "uvicorn did not replace its worker"
            time.sleep(0.1)
        sampler.sample(1.0)
        assert gone not in sampler.watched_pids
        assert workers <= sampler.watched_pids


def serving_workers(supervisor: int) -> set[int]:
    """The live uvicorn workers of `supervisor` (spawned children, zombies left out)."""
    found = set()
    for child in psutil.Process(supervisor).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue  # exited meanwhile
    return found
