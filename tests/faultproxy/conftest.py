"""Fixtures for the fault proxy tests: a real echo server and real proxy processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faultproxy.launch import RunningFaultProxy, start_faultproxy
from faultproxy.toxics import ToxicSettings
from refserver.auth import AUTH_TOKEN_ENV
from refserver.launch import RunningRefServer, start_refserver
from tests.faultproxy.helpers import StartProxy


@pytest.fixture(scope="module")
def echo_server() -> Iterator[RunningRefServer]:
    """One reference echo server shared by a module's tests; the proxies in front of it come and go."""
    # A token in the developer's environment must not switch auth on by surprise.
    with start_refserver([], env={AUTH_TOKEN_ENV: None}) as server:
        yield server


@pytest.fixture
def start_proxy(echo_server: RunningRefServer) -> Iterator[StartProxy]:
    """Start proxies in front of the echo server with ``start_proxy(latency_ms=...)``; all stop at teardown."""
    proxies: list[RunningFaultProxy] = []

    def start(seed: int | None = None, **toxics: float) -> RunningFaultProxy:
        settings = ToxicSettings(**toxics)  # type: ignore[arg-type]
        proxy = start_faultproxy(echo_server.host, echo_server.port, toxics=settings, seed=seed)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
