"""End to end: servers with worker processes, found from a loopback --host, are judged as a whole."""

from __future__ import annotations

import re
from pathlib import Path

from tests.servers.multi_worker_servers import prefork_leaky_server, uvicorn_workers


def test_a_leak_in_a_worker_that_is_not_found_first_fails_memory_growth(locust) -> None:
    """All connections land in the pre-fork server's first worker, which leaks 2 MiB each: memory_growth_mb fails."""
    with prefork_leaky_server(leak_mb_per_connection=2) as server:
        run = locust("--host", server.url)
    assert run.exit_code == 3, run.output[-3000:]
    growth = run.check("memory_growth_mb")
    assert growth["status"] == "fail", growth
    assert growth["observed"] >= 30  # 4 users x 5 cycles and the recovery probe, 2 MiB each
    # The parent, the accepting worker and the idle one (psutil found only the idle one).
    watched = rf"process tree of pid {server.pid} \(\S+, 3 processes\), port {server.port}"
    assert re.search(watched, run.verdict["monitor"]["watching"]), run.verdict["monitor"]["watching"]
    assert "the 3 processes listening on port" in run.output
    assert f"monitoring process tree of pid {server.pid} " in run.output


def test_uvicorn_with_two_workers_is_monitored_as_one_server(locust, tmp_path: Path) -> None:
    """`uvicorn --workers 2` from a loopback --host: the supervisor and both workers are watched, and the run passes."""
    log_dir = tmp_path / "uvicorn"
    log_dir.mkdir()
    with uvicorn_workers(log_dir, workers=2) as server:
        run = locust("--host", server.url)
    assert run.exit_code == 0, run.output[-3000:]
    match = re.search(rf"process tree of pid {server.pid} \(\S+, (\d+) processes\)", run.verdict["monitor"]["watching"])
    assert match, run.verdict["monitor"]["watching"]
    assert int(match.group(1)) >= 3  # the supervisor and two workers (and multiprocessing's resource tracker)
    assert run.check("memory_growth_mb")["status"] == "pass"
