"""The web UI in a real headless Chromium: start a run from the form, open the "Server resources" tab.

Chromium is driven over the DevTools protocol with websocket-client (already a dependency),
so no browser download and no extra driver. Without Chromium the test skips, except under CI
(env CI set), where it fails: .ci/run installs Chromium.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from tests.support.e2e_helpers import locust_ui, wait_until
from tests.support.unavailable import unavailable

pytestmark = pytest.mark.e2e  # real Locust processes

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TAB_TITLE = "Server resources"  # pack/web_ui.py TAB_TITLE
RUN_DEADLINE_S = 60


class Browser:
    """A headless Chromium process and a DevTools connection to its page."""

    def __init__(self, profile_dir: Path, log_path: Path) -> None:
        self.log_path = log_path  # Chromium's own output, shown when it fails
        self.process = subprocess.Popen(  # its own session: teardown kills the whole group
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile_dir}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        port = wait_until(lambda: self._devtools_port(profile_dir), 30, "Chromium's DevTools port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        # Chromium refuses DevTools websockets that send an Origin it does not allow.
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=20, suppress_origin=True)
        self.exceptions: list[str] = []  # uncaught JavaScript exceptions of the page
        self._next_id = 0  # id of the last command sent

    def _devtools_port(self, profile_dir: Path) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"Chromium exited ({self.process.returncode}):\n{self.log_path.read_text()[-2000:]}")
        port_file = profile_dir / "DevToolsActivePort"
        lines = port_file.read_text().splitlines() if port_file.exists() else []
        return int(lines[0]) if len(lines) >= 2 else None

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a DevTools command and return its result (events that arrive meanwhile are noted)."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(json.dumps(message["params"]["exceptionDetails"])[:1000])
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """Save the whole page as a PNG."""
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Close Chromium (it reaps its own children); kill its process group if it lingers."""
        try:
            self.send("Browser.close")
        except (OSError, websocket.WebSocketException, AssertionError):
            pass
        self.socket.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def require_browser(path: str) -> None:
    """Skip without Chromium at `path`, but fail under CI (env CI set): there a skip would pass untested."""
    if os.path.exists(path):
        return
    unavailable("Chromium not installed: apt-get install chromium chromium-driver")


def test_a_missing_browser_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With CI set, a missing Chromium fails the browser test; without CI it skips."""
    missing = str(tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_browser(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_browser(missing)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A fresh headless Chromium with its own profile, killed at teardown."""
    require_browser(CHROMIUM)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    browser = Browser(profile, tmp_path / "chromium.log")
    try:
        browser.send("Page.enable")
        browser.send("Runtime.enable")
        browser.send("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        yield browser
    finally:
        browser.close()


def _click(text: str, selector: str) -> str:
    """JavaScript: click the first `selector` element whose text is `text`; true if found."""
    return (
        f"(() => {{ const e = [...document.querySelectorAll({json.dumps(selector)})]"
        f".find(e => e.textContent.trim() === {json.dumps(text)}); if (e) e.click(); return !!e; }})()"
    )


def test_the_server_resources_tab_shows_samples_checks_chart_and_verdict(browser: Browser, tmp_path: Path) -> None:
    """Start a run from the UI's form, open the tab, watch samples arrive, then the verdict; screenshot it."""
    (tmp_path / "locust").mkdir()
    with locust_ui(tmp_path / "locust") as ui:
        browser.send("Page.navigate", url=ui.url("/"))
        # Let the UI apply its first /stats/requests ("ready") before Start, as a person would: if that
        # answer is handled after Start's, the UI falls back to the start form and stops polling.
        loaded = "performance.getEntriesByType('resource').some(e => e.name.endsWith('/stats/requests'))"
        wait_until(lambda: browser.eval(loaded), 30, "the UI's first /stats/requests")
        browser.eval("new Promise(done => requestIdleCallback(() => done(true), {timeout: 5000}))")
        # The form's Start button posts every field, the blanked token among them.
        wait_until(lambda: browser.eval(_click("Start", "button")), 30, "the Start button")
        wait_until(lambda: browser.eval(_click(TAB_TITLE, '[role="tab"]')), 30, f"the {TAB_TITLE!r} tab")
        assert "tab=server-resources" in browser.eval("location.search")

        # Locust's table of the tab, filled from /stats/requests: a memory reading in MB.
        memory_now = (
            "(() => { const row = [...document.querySelectorAll('tr')]"
            ".find(r => r.cells[0] && r.cells[0].textContent.trim() === 'Memory (RSS)');"
            " const now = row && row.cells[2].textContent.trim(); return now && now !== '-' ? now : null; })()"
        )
        assert wait_until(lambda: browser.eval(memory_now), 30, "a memory sample in the tab's table").endswith(" MB")

        # The pack's panel under it: samples, the checks, the chart, then the verdict.
        panel = "document.getElementById('flapping-pack-panel')"
        wait_until(
            lambda: browser.eval(f"{panel} && !{panel}.hidden && /samples: [1-9]/.test({panel}.innerText)"),
            30,
            "the panel to count samples",
        )
        verdict = wait_until(
            lambda: browser.eval(f"{panel}.querySelector('.fp-verdict:not([hidden])')?.textContent"),
            RUN_DEADLINE_S,
            "the verdict in the panel",
        )
        assert verdict.startswith("VERDICT: PASS"), verdict
        rows = f"[...{panel}.querySelectorAll('table.fp-checks tbody tr')]"
        checks = browser.eval(f"{rows}.map(r => r.cells[0].innerText)")
        assert {"server_alive", "connect_success_pct", "memory_growth_mb", "fd_growth"} <= set(checks)
        # How each settle ended, and how often each series changed, under the checks.
        notes = browser.eval(f"[...{panel}.querySelectorAll('ul.fp-notes li')].map(li => li.innerText)")
        assert any(note.startswith("round 1 settle: settled after") for note in notes), notes
        assert any(note.startswith("memory (process):") for note in notes), notes
        wait_until(lambda: browser.eval(f"!!{panel}.querySelector('.uplot canvas')"), 10, "the chart")
        legend = browser.eval(f"{panel}.querySelector('.u-legend').innerText")
        for series in ("Memory (MB)", "Open fds", "Held connections", "Agents"):
            assert series in legend
        wait_until(lambda: browser.eval("document.body.innerText.includes('STOPPED')"), 10, "Locust to show STOPPED")

        screenshot = tmp_path / "server-resources.png"
        browser.screenshot(screenshot)
        assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 20_000

        # Offline: every resource the page loaded came from the Locust process itself.
        loaded = browser.eval("performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(url.startswith(ui.url("/")) for url in loaded), loaded
        assert not browser.exceptions, browser.exceptions
