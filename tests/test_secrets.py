"""The auth token never shows, even when a server throws the request back at the client.

The server here answers every upgrade with HTTP 401 and a body that repeats the request:
its request line (the token, with --ws-auth-in query) and its headers (the token, as
`Authorization: Bearer`). The runs log at DEBUG and write every report Locust and the pack
can write; no byte of any of them, nor of the output, nor of the web UI, holds the token.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.hostile_servers import REJECT_ECHOING_REQUEST, HostileServer
from tests.support.e2e_helpers import TOKEN, locust_ui, wait_until
from tests.support.locust_process import run_locust

pytestmark = pytest.mark.e2e  # real Locust processes

# Every file a run can write: Locust's CSV (with history), HTML, JSON and log file, and the
# pack's verdict JSON, JUnit XML and resource timeline (the last three from locust_command).
REPORT_ARGS = [
    "--csv-full-history", "--html", "{out}/report.html", "--json-file", "{out}/stats",
    "--logfile", "{out}/locust.log", "--loglevel", "DEBUG",
]  # fmt: skip
UI_PATHS = [
    "/",
    "/stats/requests",
    "/stats/report",
    "/stats/requests/csv",
    "/stats/failures/csv",
    "/exceptions",
    "/exceptions/csv",
    "/logs",
    "/flapping-pack/status.json",
    "/flapping-pack/verdict.json",
    "/flapping-pack/resources.csv",
]


def _files_holding(directory: Path, secret: str) -> list[str]:
    return [p.name for p in sorted(directory.rglob("*")) if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.parametrize("place", ["header", "query"])
def test_a_server_echoing_the_token_back_does_not_leak_it(tmp_path: Path, place: str) -> None:
    """At DEBUG, every output and every file of a run whose server repeats the token in its 401 is free of it."""
    with HostileServer(REJECT_ECHOING_REQUEST) as server:
        run = run_locust(
            [
                "--host", server.url, "--ws-auth-token", TOKEN, "--ws-auth-in", place,
                "--flap-cycles", "2", "-u", "2", "--recovery-timeout-s", "0.5",
                *(arg.replace("{out}", str(tmp_path)) for arg in REPORT_ARGS),
            ],
            tmp_path,
            timeout_s=90,
        )  # fmt: skip
        requests_seen = list(server.requests)
    assert run.exit_code == 3, run.output[-3000:]
    assert requests_seen and all(TOKEN.encode() in request for request in requests_seen)  # it was sent
    assert "handshake rejected: HTTP 401" in (tmp_path / "run_failures.csv").read_text()
    written = {p.name for p in tmp_path.iterdir()}
    assert {"report.html", "stats.json", "locust.log", "verdict.json", "run_stats_history.csv"} <= written, written
    assert "DEBUG" in (tmp_path / "locust.log").read_text()
    assert TOKEN not in run.output
    assert _files_holding(tmp_path, TOKEN) == []


def test_the_web_ui_does_not_show_the_token_of_failing_connects(tmp_path: Path) -> None:
    """A UI run with the token in the query against the echoing server: no page, table, exception or download has it."""
    with HostileServer(REJECT_ECHOING_REQUEST) as server, locust_ui(
        tmp_path, "--host", server.url, "--ws-auth-in", "query", "--flap-cycles", "2", "--loglevel", "DEBUG",
        "--recovery-timeout-s", "0.5",
    ) as ui:  # fmt: skip
        answer = ui.post("/swarm", {"user_count": "2", "spawn_rate": "2", "ws_auth_token": ""})
        assert answer.json()["success"], answer.text
        wait_until(lambda: ui.status()["final"], 60, "the verdict of the UI run")
        pages = {path: ui.get(path) for path in UI_PATHS}
        assert any(TOKEN.encode() in request for request in server.requests)  # it was sent
        output = ui.process.output
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert TOKEN not in page.text, path
    assert "handshake rejected: HTTP 401" in pages["/stats/requests"].text
    assert TOKEN not in output
    assert _files_holding(tmp_path, TOKEN) == []


def test_a_rejected_token_fails_connects_without_showing_it(locust, start_server) -> None:
    """The reference server refuses a wrong token with 401: a stable failure, and the wrong token is nowhere."""
    server = start_server(env={"REFSERVER_AUTH_TOKEN": "the-right-one"})
    run = locust(
        "--host", server.url, "--ws-auth-token", TOKEN, "--ws-auth-in", "query", "--flap-cycles", "2", "-u", "2",
        "--loglevel", "DEBUG", "--recovery-timeout-s", "0.5",
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    assert "handshake rejected: HTTP 401" in (run.out_dir / "run_failures.csv").read_text()
    assert TOKEN not in run.output
    assert TOKEN not in server.stderr_text() + server.stdout_text()
    assert _files_holding(run.out_dir, TOKEN) == []
