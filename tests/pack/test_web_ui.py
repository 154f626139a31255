"""The pack in Locust's web UI and HTML report, against real Locust processes on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from monitors.verdict_report import TIMELINE_CSV_HEADER
from tests.support.e2e_helpers import TOKEN, LocustUI, locust_ui, wait_until
from tests.support.locust_process import run_locust

pytestmark = pytest.mark.e2e  # real Locust processes

# What the user sees and what links to it (pack/web_ui.py); the test process must not import
# locust (gevent's monkey-patching after requests is imported breaks ssl).
TAB_TITLE = "Server resources"
TAB_KEY = "server-resources"
RUN_DEADLINE_S = 60  # baseline 1 s, 5 short cycles, settle 1 s: a few seconds in practice


@dataclass
class UIRun:
    """A run started through the web UI's HTTP API, watched until its verdict."""

    ui: LocustUI  # the Locust process, still serving after the run
    live: list[dict[str, Any]] = field(default_factory=list)  # statuses seen before the verdict
    verdict_before_start: Any = None  # the /flapping-pack/verdict.json answer before any run
    final: dict[str, Any] = field(default_factory=dict)  # the status once the verdict is made


@pytest.fixture(scope="module")
def ui_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIRun]:
    """Start Locust's UI, POST /swarm, poll the live status until the verdict is made."""
    with locust_ui(tmp_path_factory.mktemp("ui")) as ui:
        run = UIRun(ui, verdict_before_start=ui.get("/flapping-pack/verdict.json"))
        # No host field: the pack started its bundled server and set the host itself. The token
        # comes back empty, as the UI's form sends the blanked secret: the start-up value stays.
        answer = ui.post("/swarm", {"user_count": "3", "spawn_rate": "3", "ws_auth_token": ""})
        assert answer.json()["success"], answer.text

        def finished() -> dict[str, Any] | None:
            status = ui.status()
            if status["final"]:
                return status
            run.live.append(status)
            return None

        run.final = wait_until(finished, RUN_DEADLINE_S, "the verdict of the UI run")
        yield run


def test_verdict_json_is_404_with_a_reason_until_the_verdict_is_made(ui_run: UIRun) -> None:
    """Before any run, /flapping-pack/verdict.json says why there is none, as JSON."""
    response = ui_run.verdict_before_start
    assert response.status_code == 404
    assert "no verdict yet" in response.json()["error"]


def test_status_shows_live_samples_and_checks_while_running(ui_run: UIRun) -> None:
    """While the test runs, the status has samples, baseline/now/growth rows and each check's state."""
    sampled = [s for s in ui_run.live if s["samples"]["total"] > 0]
    assert sampled, "no live status with samples was seen before the verdict"
    status = sampled[-1]
    assert status["phase"] in ("baseline", "flapping", "settle", "done")
    assert status["final"] is False
    rows = {row["metric"]: row for row in status["resources"]}
    assert set(rows) == {"Memory (RSS)", "Open fds", "Threads", "Held connections", "Agents"}
    assert rows["Memory (RSS)"]["now"].endswith(" MB")
    assert status["checks"] and all(c["status"] in ("pass", "fail", "skip") for c in status["checks"])


def test_the_run_ends_with_a_passing_verdict(ui_run: UIRun) -> None:
    """After the run the status is final and verdict.json holds the passing verdict."""
    assert ui_run.final["passed"] is True
    assert ui_run.final["phase"] == "done"
    response = ui_run.ui.get("/flapping-pack/verdict.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    verdict = response.json()
    assert verdict["passed"] is True and verdict["exit_code"] == 0 and verdict["final"] is True
    # The token reached the bundled server (it requires it): every connect succeeded.
    assert verdict["cycles"]["connect_attempts"] > 0
    assert verdict["cycles"]["connect_failures"] == 0


def test_the_timeline_csv_downloads_with_every_sample(ui_run: UIRun) -> None:
    """/flapping-pack/resources.csv has the header and one row per sample, every phase present."""
    response = ui_run.ui.get("/flapping-pack/resources.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == TIMELINE_CSV_HEADER
    assert len(rows) - 1 == ui_run.final["samples"]["total"]
    assert {row[1] for row in rows[1:]} == {"baseline", "flapping", "settle"}


def test_the_chart_data_has_every_series_and_the_phases(ui_run: UIRun) -> None:
    """/flapping-pack/timeline.json has a column per series and the three phases in order."""
    data = ui_run.ui.get("/flapping-pack/timeline.json").json()
    n = len(data["t_s"])
    assert n == ui_run.final["samples"]["total"]
    for series in ("rss_mb", "open_fds", "held_connections", "agents"):
        assert len(data[series]) == n
    assert [p["phase"] for p in data["phases"]] == ["baseline", "flapping", "settle"]


def test_the_tab_table_and_downloads_are_registered_with_locust(ui_run: UIRun) -> None:
    """The index page declares the tab, its table and the downloads; /stats/requests fills the table."""
    page = ui_run.ui.get("/").text
    args = _template_args(page)
    assert args["extended_tabs"] == [{"title": TAB_TITLE, "key": TAB_KEY}]
    assert args["extended_tables"][0]["key"] == TAB_KEY
    assert {f["href"] for f in args["extended_csv_files"]} == {
        "./flapping-pack/resources.csv",
        "./flapping-pack/verdict.json",
    }
    assert "./flapping-pack/static/tab.js" in page
    stats = ui_run.ui.get("/stats/requests").json()
    extended = {e["key"]: e["data"] for e in stats["extended_stats"]}
    assert [row["metric"] for row in extended[TAB_KEY]][0] == "Memory (RSS)"


def test_the_token_is_a_secret_custom_parameter(ui_run: UIRun) -> None:
    """The pack's options are custom parameters; the token is marked secret and shown empty."""
    options = _template_args(ui_run.ui.get("/").text)["extra_options"]
    assert {"flap_cycles", "baseline_s", "max_memory_growth_mb", "ws_auth_token"} <= set(options)
    assert options["ws_auth_token"]["is_secret"] is True
    assert options["ws_auth_token"]["default_value"] == ""
    assert options["flap_cycles"]["is_secret"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/stats/requests",
        "/stats/report",
        "/stats/requests/csv",
        "/flapping-pack/status.json",
        "/flapping-pack/timeline.json",
        "/flapping-pack/resources.csv",
        "/flapping-pack/verdict.json",
        "/logs",
    ],
)
def test_the_token_value_is_never_served(ui_run: UIRun, path: str) -> None:
    """No page or JSON of the UI contains the token's value."""
    response = ui_run.ui.get(path)
    assert response.status_code == 200
    assert TOKEN not in response.text


def test_the_ui_download_report_has_the_pack_section(ui_run: UIRun) -> None:
    """The UI's "Download Report" carries the verdict table and the chart, with nothing fetched online."""
    page = ui_run.ui.get("/stats/report").text
    _assert_offline_report(page)


def test_pack_routes_sit_under_the_base_path_behind_the_login(tmp_path: Path) -> None:
    """With --web-base-path and --web-login, the pack's routes answer like Locust's own pages."""
    with locust_ui(tmp_path, "--web-login", base_path="/locust", ready_path="/login") as ui:
        index = ui.get("/", allow_redirects=False)
        for path in ("/flapping-pack/status.json", "/flapping-pack/verdict.json", "/flapping-pack/resources.csv"):
            response = ui.get(path, allow_redirects=False)
            # No login is configured in the locustfile, so Locust answers with its auth error page.
            assert (response.status_code, response.text) == (index.status_code, index.text), path
            assert '"checks"' not in response.text
        assert ui.get("/flapping-pack/static/tab.js").status_code == 200
        outside = ui.base_url.removesuffix("/locust") + "/flapping-pack/status.json"
        assert requests.get(outside, timeout=10).status_code == 404


def test_headless_html_report_has_the_verdict_and_an_offline_chart(tmp_path: Path) -> None:
    """`--headless --html` writes a report with the verdict table and the chart's data inlined."""
    report = tmp_path / "report.html"
    run = run_locust(["--html", str(report), "--ws-auth-token", TOKEN], tmp_path, timeout_s=RUN_DEADLINE_S)
    assert run.exit_code == 0, run.output[-3000:]
    page = report.read_text(encoding="utf-8")
    _assert_offline_report(page)
    assert "VERDICT: PASS" in page
    assert TOKEN not in page


# --- helpers -------------------------------------------------------------------------------


def _template_args(page: str) -> dict[str, Any]:
    match = re.search(r"window\.templateArgs = (\{.*?\})\n", page)
    assert match, "no templateArgs in the index page"
    args: dict[str, Any] = json.loads(match.group(1))
    return args


def _assert_offline_report(page: str) -> None:
    assert page.count('id="flapping-pack-report"') == 1
    assert "fp-verdict-table" in page
    for check in ("server_alive", "connect_success_pct", "memory_growth_mb", "fd_growth", "lingering_connections"):
        assert check in page
    match = re.search(r'<script type="application/json" id="flapping-pack-data">(.*?)</script>', page, re.S)
    assert match, "no chart data in the report"
    data = json.loads(match.group(1))
    assert data["t_s"] and len(data["rss_mb"]) == len(data["t_s"])
    assert [p["phase"] for p in data["phases"]] == ["baseline", "flapping", "settle"]
    assert "uPlot" in page and "flappingPackChart" in page
    assert not re.search(r"<script[^>]*\ssrc=[\"']?(https?:)?//", page, re.I), "a script is fetched from the network"
    assert not re.search(r"<link[^>]*\shref=[\"']?(https?:)?//", page, re.I), "a stylesheet is fetched from the network"
