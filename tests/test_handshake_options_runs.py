"""Handshake options end to end: real Locust runs against real servers on 127.0.0.1.

A Django Channels app behind `AllowedHostsOriginValidator` needs the Origin the pack derives
from --host; --ws-header values never show in any output or report; bad --ws-header and
--ws-ca-file values are refused before any load with one line naming the option.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tests.servers.hostile_servers import REJECT_ECHOING_REQUEST, HostileServer
from tests.support.locust_process import LocustRun

HEADER_VALUE = "hdr-s3cret-value"
# The Channels consumer echoes JSON and answers other text with an error, so the hold speaks JSON.
JSON_ECHO = """\
hold:
  - send: {type: echo, text: "hi ${user}:${cycle}"}
  - expect: {type: echo, text: "hi ${user}:${cycle}"}
    name: echo
"""
# Every report a run can write besides the verdict, JUnit, resource and stats CSV files it always writes.
REPORT_ARGS = ["--csv-full-history", "--html", "{out}/report.html", "--json-file", "{out}/stats",
               "--logfile", "{out}/locust.log", "--loglevel", "DEBUG"]  # fmt: skip


def _failures(run: LocustRun) -> set[tuple[str, str]]:
    with open(run.out_dir / "run_failures.csv") as file:
        return {(row["Name"], row["Error"]) for row in csv.DictReader(file)}


def _files_holding(directory: Path, secret: str) -> list[str]:
    return [p.name for p in sorted(directory.rglob("*")) if p.is_file() and secret.encode() in p.read_bytes()]


def _report_args(out_dir: Path) -> list[str]:
    return [arg.replace("{out}", str(out_dir)) for arg in REPORT_ARGS]


def _refusal(run: LocustRun, option: str) -> str:
    """The one line of a run refused before any load because of `option` (exit 2, no traceback, no request)."""
    assert run.exit_code == 2, run.output[-2000:]
    lines = [line for line in run.output.splitlines() if option in line]
    assert len(lines) == 1, run.output[-2000:]
    assert "Traceback" not in run.output
    assert "baseline phase" not in run.output  # no load started
    return lines[0]


# --- Origin ----------------------------------------------------------------------------------


def test_an_origin_checking_django_channels_app_passes_with_the_default_origin(
    start_app_server, locust, tmp_path: Path
) -> None:
    """The Origin derived from --host satisfies AllowedHostsOriginValidator: every connect and echo succeeds."""
    server = start_app_server("django_channels")
    conversation = tmp_path / "json-echo.yaml"
    conversation.write_text(JSON_ECHO)
    metrics = ["--server-metrics-url", server.metrics_url, "--agents-metric", "app_agents_active"]
    run = locust("--host", server.url, "--ws-conversation", str(conversation), *metrics)
    assert run.exit_code == 0, run.output[-3000:]
    assert run.check("connect_success_pct")["status"] == "pass"
    assert int(run.stats_row("echo")["Request Count"]) == 20  # 4 users x 5 cycles, each a JSON exchange
    assert int(run.stats_row("echo")["Failure Count"]) == 0


def test_without_an_origin_the_django_channels_app_refuses_every_connect(start_app_server, locust) -> None:
    """--ws-origin '' sends no Origin, so the validator answers 403 to every handshake: connects fail, exit 3."""
    server = start_app_server("django_channels")
    run = locust("--host", server.url, "--ws-origin", "", "--no-flap-echo", "--recovery-timeout-s", "0.5")
    assert run.exit_code == 3, run.output[-3000:]
    assert "handshake rejected: HTTP 403" in {error for _name, error in _failures(run)}, _failures(run)
    assert run.check("connect_success_pct")["status"] == "fail"


# --- header values are secrets -------------------------------------------------------------


def test_header_values_appear_in_no_output_or_report(locust, tmp_path: Path) -> None:
    """A run on the bundled server with --ws-header at DEBUG passes, and no output or file holds the value."""
    run = locust("--ws-header", f"X-Api-Key: {HEADER_VALUE}", *_report_args(tmp_path))
    assert run.exit_code == 0, run.output[-3000:]
    written = {p.name for p in tmp_path.iterdir()}
    assert {"report.html", "stats.json", "locust.log", "verdict.json", "verdict.junit.xml"} <= written, written
    assert {"run_stats.csv", "run_failures.csv", "run_stats_history.csv", "resources.csv"} <= written, written
    assert "DEBUG" in (tmp_path / "locust.log").read_text()  # the most talkative log level was on
    assert HEADER_VALUE not in run.output
    assert _files_holding(tmp_path, HEADER_VALUE) == []


def test_a_server_echoing_the_header_back_does_not_leak_it(locust, tmp_path: Path) -> None:
    """A server whose 401 repeats the request head gets the header, yet no output or report of the run holds it."""
    with HostileServer(REJECT_ECHOING_REQUEST) as server:
        run = locust(
            "--host", server.url, "--ws-header", f"X-Api-Key: {HEADER_VALUE}", "--flap-cycles", "2", "-u", "2",
            "--recovery-timeout-s", "0.5", *_report_args(tmp_path), timeout_s=90,
        )  # fmt: skip
        requests_seen = list(server.requests)
    assert run.exit_code == 3, run.output[-3000:]
    assert requests_seen and all(f"X-Api-Key: {HEADER_VALUE}".encode() in head for head in requests_seen)  # sent
    assert "handshake rejected: HTTP 401" in {error for _name, error in _failures(run)}, _failures(run)
    assert HEADER_VALUE not in run.output
    assert _files_holding(tmp_path, HEADER_VALUE) == []


def test_a_malformed_header_is_refused_in_one_line_without_its_value(locust) -> None:
    """--ws-header 'Bad Header: ...' (a space in the name) exits 2 before any load, naming the option, not the value."""
    run = locust("--ws-header", f"Bad Header: {HEADER_VALUE}", timeout_s=60)
    line = _refusal(run, "--ws-header")
    assert line.startswith("flapping-pack: --ws-header:"), line
    assert HEADER_VALUE not in run.output


# --- --ws-ca-file ----------------------------------------------------------------------------


def test_a_missing_ca_file_is_refused_in_one_line(locust) -> None:
    """--ws-ca-file /no/such.pem exits 2 before any load with one line naming the option and the path."""
    line = _refusal(locust("--ws-ca-file", "/no/such.pem", timeout_s=60), "--ws-ca-file")
    assert "no such file: /no/such.pem" in line


def test_a_ca_file_without_certificates_is_refused_in_one_line(locust, tmp_path: Path) -> None:
    """A --ws-ca-file that is not PEM exits 2 before any load, saying it holds no certificate."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    line = _refusal(locust("--ws-ca-file", str(junk), timeout_s=60), "--ws-ca-file")
    assert f"{junk} holds no PEM certificate" in line
