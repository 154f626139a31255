"""The feeder against a real WebSocket server: its steps per active user, its rows, its sessions, its end."""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment

from scenarios.client import WsClient
from scenarios.feed import FeedTargets
from scenarios.feeder import Feeder
from scenarios.lifecycle import ConversationScript
from scenarios.protocols import load_conversation_text
from scenarios.settings import ClientSettings
from scenarios.tracker import ConnectionTracker
from tests.servers.raw_ws_server import RawWsServer

ECHO_FEED = """
feed:
  every_ms: 30
  steps:
    - send: "${target}:${seq}"
    - expect_text: "${target}:${seq}"
      name: echo
"""
FAILING_FEED = """
feed:
  every_ms: 30
  steps:
    - send: "${target}:${seq}"
    - expect_text: "never"
      name: never
      timeout_ms: 100
"""


def _feeder(text: str, url: str, targets: FeedTargets) -> tuple[Feeder, ConnectionTracker, list[dict[str, Any]]]:
    environment = Environment(events=events)
    rows: list[dict[str, Any]] = []

    def on_request(**row: Any) -> None:
        if row["name"].startswith("feed-"):
            rows.append(row)

    events.request.add_listener(on_request)
    conversation = load_conversation_text(text, "feed.yaml")
    client = WsClient(ClientSettings(timeout_s=2.0, conversation=conversation))
    tracker = ConnectionTracker()
    return Feeder(environment, client, ConversationScript, targets, tracker, url, number=99), tracker, rows


def _wait(condition: Any, deadline_s: float = 10.0) -> None:
    ends_at = time.monotonic() + deadline_s
    while not condition() and time.monotonic() < ends_at:
        gevent.sleep(0.02)


def test_each_round_runs_the_steps_once_per_active_user_with_its_own_seq() -> None:
    """Targets 3 and 5 get 3:1, 3:2, ... and 5:1, 5:2, ... in order; the feeder ends with the last active user."""
    targets = FeedTargets()
    targets.add(3)
    targets.add(5)
    with RawWsServer() as server:
        feeder, tracker, rows = _feeder(ECHO_FEED, server.url, targets)
        feeder.start()
        _wait(lambda: targets.last_sent(5) >= 3)
        targets.remove(3)
        targets.remove(5)
        _wait(lambda: not feeder.running)
        assert not feeder.running
        messages = [m for seen in server.snapshot() for m in seen.messages]
    for target in (3, 5):
        seqs = [int(m.split(":")[1]) for m in messages if m.startswith(f"{target}:")]
        assert seqs == list(range(1, targets.last_sent(target) + 1)) and len(seqs) >= 3, messages
    names = {row["name"] for row in rows}
    assert names == {"feed-connect", "feed-echo"}, names
    assert not any(row["exception"] for row in rows)
    assert (tracker.total.sessions_succeeded, tracker.total.sessions_failed) == (1, 0)


def test_a_failing_feed_step_is_a_failed_feed_row_and_a_failed_session() -> None:
    """An expect that never matches: a `feed-never` failure row, a failed session, the seq not counted as sent."""
    targets = FeedTargets()
    targets.add(0)
    with RawWsServer() as server:
        feeder, tracker, rows = _feeder(FAILING_FEED, server.url, targets)
        feeder.start()
        _wait(lambda: tracker.total.sessions_failed >= 1)
        feeder.stop()
        assert not feeder.running
    failed = [row for row in rows if row["exception"]]
    assert failed and failed[0]["name"] == "feed-never", rows
    assert tracker.total.sessions_failed >= 1
    assert targets.last_sent(0) == 0  # the next round sends seq 1 again
