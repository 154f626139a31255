"""Shared fixtures: real Locust processes and real servers on 127.0.0.1."""

from __future__ import annotations

# Locust's import monkey-patches the standard library for gevent; it must come before
# anything imports ssl or socket (some tests import the Locust glue).
import locust as _locust_first  # noqa: F401  isort: skip

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from refserver.auth import AUTH_TOKEN_ENV
from refserver.launch import RunningRefServer, start_refserver
from tests.servers import RunningAppServer
from tests.servers import start_app_server as launch_app_server
from tests.support.installed_pack import InstalledPack, install_clean_clone
from tests.support.locust_process import LocustRun, run_locust
from tests.support.shards import DurationRecorder, ShardPlugin, parse_shard

Server = TypeVar("Server", RunningRefServer, RunningAppServer)  # what the fixtures start: it has stop()


def _each_stopped_at_teardown(launch: Callable[..., Server]) -> Iterator[Callable[..., Server]]:
    """A fixture's body: it gives `launch`, and every server that starts is stopped at teardown."""
    servers: list[Server] = []

    def start(*args: Any, **kwargs: Any) -> Server:
        server = launch(*args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _refserver(*args: str, env: Mapping[str, str | None] | None = None) -> RunningRefServer:
    # A token in the developer's environment must not switch auth on by surprise.
    return start_refserver(list(args), env={AUTH_TOKEN_ENV: None, **(env or {})})


@pytest.fixture
def start_server() -> Iterator[Callable[..., RunningRefServer]]:
    """Start reference servers with `start_server(*args, env=...)`; all are stopped at teardown."""
    yield from _each_stopped_at_teardown(_refserver)


@pytest.fixture
def start_app_server() -> Iterator[Callable[..., RunningAppServer]]:
    """Start test servers (tests/servers/) with `start_app_server(name, *args, env=...)`; all stop at teardown."""
    yield from _each_stopped_at_teardown(launch_app_server)


@pytest.fixture
def locust(tmp_path) -> Iterator:
    """Run `locust -f locustfile.py --headless ...` with small, fast defaults; outputs go to tmp_path."""

    def run(*args: str, timeout_s: float = 120, env: dict[str, str] | None = None) -> LocustRun:
        return run_locust(list(args), tmp_path, timeout_s=timeout_s, env=env)

    yield run


# --- tiers ------------------------------------------------------------------------------------
# The fast tier, `./test.sh -m "not e2e"`, starts no Locust process. Tests that take these
# fixtures are e2e by themselves; any other test that starts Locust must say `@pytest.mark.e2e`
# (or `pytestmark = pytest.mark.e2e`): the guard below fails it otherwise, so no test slips into
# the fast tier unnoticed.
E2E_FIXTURES = frozenset({"locust", "start_server", "start_app_server", "installed_pack"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shard", default=None, metavar="K/N", help="run the K-th of N parts of the tests (test.sh)")
    parser.addoption(
        "--record-durations", action="store_true", help="update tests/durations.json with each file's time"
    )


def pytest_configure(config: pytest.Config) -> None:
    shard = config.getoption("--shard")
    if shard:
        try:
            index, count = parse_shard(shard)
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(ShardPlugin(index, count), "shards")
    if config.getoption("--record-durations"):
        if config.option.markexpr or config.option.keyword:
            raise pytest.UsageError("--record-durations needs whole files: leave out -m and -k")
        config.pluginmanager.register(DurationRecorder(config.rootpath), "durations")
    config.addinivalue_line("markers", "e2e: starts Locust processes or servers (left out by -m 'not e2e')")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _no_locust_outside_e2e(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked e2e that starts a Locust process fails, naming the marker it lacks."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    import subprocess

    real_init = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        argv = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
        if any(a.rsplit("/", 1)[-1] in ("locust", "locustfile.py", "flap.sh", "flap") for a in argv):
            raise AssertionError("this test starts Locust: mark it @pytest.mark.e2e")
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


@pytest.fixture(scope="session")
def installed_pack(tmp_path_factory: pytest.TempPathFactory) -> InstalledPack:
    """The pack `pip install`ed from a clean clone into a fresh venv, once per test session."""
    return install_clean_clone(tmp_path_factory.mktemp("installed-pack"))
