"""Locust with its web UI in a real process, for the web UI and browser tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import requests

from tests.support.locust_process import LocustProcess

_T = TypeVar("_T")

TOKEN = "s3cr3t-TOKEN-value"  # the --ws-auth-token of UI runs; must never be served back


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (Locust's --web-port cannot be 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def worker_processes(count: int) -> list[str]:
    """Locust's --processes `count`, the master on a free loopback port (not the shared default 5557)."""
    port = str(free_port())
    return ["--processes", str(count), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
            "--master-host", "127.0.0.1", "--master-port", port]  # fmt: skip


def wait_until(probe: Callable[[], _T | None], deadline_s: float, what: str, every_s: float = 0.1) -> _T:
    """Call `probe` until it returns something truthy; fail with `what` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(every_s)


class LocustUI:
    """A Locust process serving its web UI on 127.0.0.1; `url(path)` addresses it."""

    def __init__(self, process: LocustProcess, base_url: str) -> None:
        self.process = process  # the running locust
        self.base_url = base_url  # e.g. http://127.0.0.1:12345 (plus --web-base-path)

    def url(self, path: str) -> str:
        """The absolute URL of `path` ("/stats/requests") on this UI."""
        return self.base_url + path

    def get(self, path: str, **kwargs: object) -> requests.Response:
        """GET `path` with a short timeout."""
        return requests.get(self.url(path), timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        """POST a form to `path` with a short timeout."""
        return requests.post(self.url(path), data=data, timeout=10)

    def status(self) -> dict:
        """The pack's live status."""
        response = self.get("/flapping-pack/status.json")
        response.raise_for_status()
        return response.json()


@contextmanager
def locust_ui(out_dir: Path, *args: str, base_path: str = "", ready_path: str = "/") -> Iterator[LocustUI]:
    """Start `locust` with its web UI (no test running yet); kill its process group afterwards."""
    port = free_port()
    web_args = ["--web-host", "127.0.0.1", "--web-port", str(port)]
    if base_path:
        web_args += ["--web-base-path", base_path]
    process = LocustProcess([*web_args, "--ws-auth-token", TOKEN, *args], out_dir, headless=False)
    ui = LocustUI(process, f"http://127.0.0.1:{port}{base_path}")
    try:

        def ready() -> bool:
            if process.process.poll() is not None:
                raise AssertionError(f"locust exited early:\n{process.output[-3000:]}")
            try:
                return ui.get(ready_path).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(ready, 30, "the web UI to answer")
        yield ui
    finally:
        process.kill()
