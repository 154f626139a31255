"""Fixtures for the reference server tests: real processes on 127.0.0.1, ephemeral ports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from refserver.auth import AUTH_TOKEN_ENV
from refserver.launch import RunningRefServer, start_refserver
from tests.refserver.helpers import StartServer


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start refservers with ``start_server(*args, env=...)``; all are stopped at teardown."""
    servers: list[RunningRefServer] = []

    def start(*args: str, env: Mapping[str, str | None] | None = None) -> RunningRefServer:
        # A token in the developer's environment must not switch auth on by surprise.
        server = start_refserver(list(args), env={AUTH_TOKEN_ENV: None, **(env or {})})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
