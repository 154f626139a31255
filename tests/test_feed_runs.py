"""The pack's feeder end to end: a failing feed step fails session_success_pct; a bad feed is refused before load.

The bundled server's app mode answers `{"type": "ping"}` with a pong; a feed that waits for
something it never sends fails on the feeder's own connection, as a `feed-` row.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.locust_process import ROOT

APP_STREAM = (ROOT / "examples" / "app-stream.yaml").read_text()
FEED = """
feed:
  every_ms: 50
  steps:
    - send: {type: ping, to: "${target}", seq: "${seq}"}
    - expect: {type: never}
      name: never
      timeout_ms: 200
"""


def test_a_failing_feed_step_fails_session_success_pct(locust, tmp_path: Path) -> None:
    """The users' sessions all pass, the feeder's fail: `feed-never` failure rows and session_success_pct FAIL."""
    conversation = tmp_path / "failing-feed.yaml"
    conversation.write_text(APP_STREAM + FEED)
    run = locust("--ref-server-protocol", "app", "--ws-conversation", str(conversation))
    assert run.exit_code == 3, run.output[-3000:]
    assert int(run.stats_row("feed-connect")["Request Count"]) >= 1
    assert int(run.stats_row("feed-never")["Failure Count"]) >= 1
    assert int(run.stats_row("greeting")["Failure Count"]) == 0  # the flapping users were fine
    check = run.check("session_success_pct")
    assert check["status"] == "fail", check
    failed = [c["name"] for c in run.verdict["checks"] if c["status"] == "fail"]
    assert failed == ["session_success_pct"], failed


def test_a_feed_more_often_than_every_10_ms_is_refused_before_any_load(locust, tmp_path: Path) -> None:
    """every_ms: 5 is one line naming the file and exit 2, before any connection."""
    conversation = tmp_path / "fast-feed.yaml"
    conversation.write_text(APP_STREAM + FEED.replace("every_ms: 50", "every_ms: 5"))
    run = locust("--ref-server-protocol", "app", "--ws-conversation", str(conversation), timeout_s=60)
    assert run.exit_code == 2, run.output[-2000:]
    assert f"--ws-conversation: {conversation}: feed: every_ms must be >= 10 (got 5)" in run.output
    assert "Traceback" not in run.output
