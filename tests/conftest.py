"""Shared fixtures: real Locust processes and real servers on 127.0.0.1."""

from __future__ import annotations

# Locust's import monkey-patches the standard library for gevent; it must come before
# anything imports ssl or socket (some tests import the Locust glue).
import locust as _locust_first  # noqa: F401  isort: skip

from collections.abc import Iterator

import pytest

from refserver.launch import RunningRefServer, start_refserver
from tests.locust_process import LocustRun, run_locust
from tests.servers import RunningAppServer
from tests.servers import start_app_server as launch_app_server


@pytest.fixture
def start_server() -> Iterator:
    """Start reference servers with `start_server(*args)`; all are stopped at teardown."""
    servers: list[RunningRefServer] = []

    def start(*args: str, env: dict[str, str | None] | None = None) -> RunningRefServer:
        server = start_refserver(list(args), env={"REFSERVER_AUTH_TOKEN": None, **(env or {})})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_app_server() -> Iterator:
    """Start test servers (tests/servers/) with `start_app_server(name, *args, env=...)`; all stop at teardown."""
    servers: list[RunningAppServer] = []

    def start(name: str, *args: str, env: dict[str, str | None] | None = None) -> RunningAppServer:
        server = launch_app_server(name, *args, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def locust(tmp_path) -> Iterator:
    """Run `locust -f locustfile.py --headless ...` with small, fast defaults; outputs go to tmp_path."""

    def run(*args: str, timeout_s: float = 120, env: dict[str, str] | None = None) -> LocustRun:
        return run_locust(list(args), tmp_path, timeout_s=timeout_s, env=env)

    yield run
