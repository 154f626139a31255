"""The feeder across Locust worker processes: each worker feeds its own users, the master adds up their streams.

On a real MQTT broker (aedes), `examples/mqtt-stream.yaml` with `--processes 2`: each worker numbers
its users from 0, so the file names clients and topics `${worker}-${user}` (`${target}` on the
feeder's side, which runs in the same worker); each worker's feeder publishes numbered QoS 1
messages to its own users' topics only. Persistent sessions keep what was published while a user
was away (0 lost); clean starts lose it (messages_lost FAIL).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.mqtt_broker import start_broker
from tests.support.e2e_helpers import worker_processes
from tests.support.streams import MQTT_STREAM, assert_lost_and_nothing_resumed, mqtt_stream_with_clean_starts

pytestmark = pytest.mark.e2e  # real Locust processes

WORKERS = 2
USERS = 4  # the tests' -u: two users on each worker
CYCLES = 5  # the tests' --flap-cycles
RECONNECTS = USERS * (CYCLES - 1)  # every session after a user's first resumes


def test_each_workers_feeder_feeds_its_own_users_and_nothing_is_lost(start_app_server, locust) -> None:
    """--processes 2 with persistent sessions: two feeders, every user of both workers resumed, 0 lost, PASS."""
    broker = start_broker(start_app_server)
    # Clean drops: a client that reconnects after an abrupt or reset drop races aedes's cleanup of
    # its old connection, and aedes now and then closes the new one and loses a message in flight
    # (seen with twice the users of test_continuity_runs.py, which covers those drops in one
    # process). Node's heap grows as the feed starts: this test judges continuity alone.
    run = locust(
        *worker_processes(WORKERS), "--host", broker.url, "--ws-conversation", str(MQTT_STREAM),
        "--flap-disconnect", "clean", "--min-session-success-pct", "0", "--max-memory-growth-mb", "200",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    connects, publishes = run.stats_row("feed-connect"), run.stats_row("feed-publish")
    # One feeder per worker, each connected once (a feeder reconnects only after a failure).
    assert connects["Request Count"] == str(WORKERS) and connects["Failure Count"] == "0", connects
    assert int(publishes["Request Count"]) > 0 and publishes["Failure Count"] == "0", publishes
    counts = run.verdict["connections"]["continuity"]  # added up over the workers on the master
    assert counts["chains"] == USERS, counts  # each user's sessions one chain: both workers' users counted
    assert counts["resumes_asked"] == RECONNECTS, counts
    assert counts["sessions_resumed"] == RECONNECTS, counts
    assert counts["messages_lost"] == 0, counts
    assert 0 < counts["stream_messages"] <= int(publishes["Request Count"]), (counts, publishes)
    # No user got another worker's feed too: that would duplicate about every message. A QoS 1
    # delivery the drop cut before its PUBACK is sent again on resumption: a few duplicates.
    assert counts["messages_duplicated"] <= max(2, counts["stream_messages"] // 20), counts
    assert run.check("messages_lost")["status"] == "pass"


def test_clean_starts_across_workers_lose_what_was_published_while_away(
    start_app_server, locust, tmp_path: Path
) -> None:
    """--processes 2 with clean_start: true (resume: true): both workers' users lose what was fed meanwhile; FAIL."""
    broker = start_broker(start_app_server)
    conversation = mqtt_stream_with_clean_starts(tmp_path)
    run = locust(
        *worker_processes(WORKERS), "--host", broker.url, "--ws-conversation", str(conversation),
        "--flap-disconnect", "abrupt",
    )  # fmt: skip
    assert_lost_and_nothing_resumed(run, RECONNECTS)


def test_a_feed_without_worker_in_its_names_is_refused_across_workers(locust, tmp_path: Path) -> None:
    """--processes 2 with `publish: flap/${target}`: one line naming the file and exit 2, before any load."""
    conversation = tmp_path / "alike.yaml"
    conversation.write_text(MQTT_STREAM.read_text().replace("${worker}-", ""))
    run = locust(
        *worker_processes(WORKERS), "--host", "ws://127.0.0.1:9", "--ws-conversation", str(conversation), timeout_s=60
    )
    assert run.exit_code == 2, run.output[-2000:]
    assert f"--ws-conversation: {conversation}: feed step 1: names ${{target}} without ${{worker}}" in run.output
    assert "Traceback" not in run.output
    assert "feed-connect" not in run.output
