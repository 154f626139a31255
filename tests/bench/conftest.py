"""Fixtures of the benchmark's tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.refserver.helpers import DEADLINE_S
from tests.support.locust_process import ROOT  # the project, where `-m bench.echo_server` is found


@pytest.fixture
def bench_server() -> Iterator:
    """Start `bench.echo_server` with `bench_server(*args)`; returns its port. All are stopped at teardown."""
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> int:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.echo_server", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        words = process.stdout.readline().split()  # "listening <port>"
        assert words[:1] == ["listening"], words
        return int(words[1])

    yield start
    for process in processes:
        process.kill()
        process.wait(DEADLINE_S)
