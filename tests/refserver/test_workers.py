"""--workers: a supervisor with worker processes sharing one port."""

from __future__ import annotations

import signal

import psutil

from tests.refserver.helpers import DEADLINE_S, StartServer, connect


def test_two_workers_both_serve_and_stop(start_server: StartServer) -> None:
    """--workers 2 starts two child processes that both accept connections and stop with the parent."""
    server = start_server("--workers", "2")
    workers = psutil.Process(server.pid).children()
    assert len(workers) == 2
    worker_pids = {worker.pid for worker in workers}
    seen: set[int] = set()
    for _ in range(64):  # SO_REUSEPORT hashes source ports; 64 tries miss a worker with odds 2**-63
        ws = connect(server.url)
        seen.add(int(ws.getheaders()["x-refserver-pid"]))
        ws.send("hi")
        assert ws.recv() == "hi"
        ws.close()
        if seen == worker_pids:
            break
    assert seen == worker_pids
    assert server.stop() == 0
    _, alive = psutil.wait_procs(workers, timeout=DEADLINE_S)
    assert alive == []
    assert server.stdout_text().count("refserver ready") == 1


def test_workers_die_with_killed_parent(start_server: StartServer) -> None:
    """When the supervisor is SIGKILLed, its workers exit on their own."""
    server = start_server("--workers", "2")
    workers = psutil.Process(server.pid).children()
    assert len(workers) == 2
    server.process.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=DEADLINE_S)
    assert alive == []
