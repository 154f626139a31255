"""Conversations end to end: real Locust runs against real application servers on 127.0.0.1.

Each server speaks its own protocol; the conversation file says what a connection says
after each reconnect. A healthy server passes; a faulty one fails the check that sees it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from tests.support.locust_process import ROOT, LocustRun

TOKEN = "conv-s3cret-token"
EXAMPLES = ROOT / "examples"


def _failures(run: LocustRun) -> set[tuple[str, str]]:
    with open(run.out_dir / "run_failures.csv") as file:
        return {(row["Name"], row["Error"]) for row in csv.DictReader(file)}


def _statuses(run: LocustRun) -> dict[str, str]:
    return {c["name"]: c["status"] for c in run.verdict["checks"]}


def test_the_bundled_app_protocol_passes_with_its_conversation(locust) -> None:
    """The bundled server's app mode (greeting, auth, agent responses, ping) passes with examples/app-chat.yaml."""
    run = locust("--ref-server-protocol", "app", "--ws-conversation", str(EXAMPLES / "app-chat.yaml"))
    assert run.exit_code == 0, run.output[-3000:]
    for row in ("greeting", "auth", "agent-response", "ping"):
        assert int(run.stats_row(row)["Request Count"]) == 20, row
        assert int(run.stats_row(row)["Failure Count"]) == 0, row
    assert _statuses(run)["session_success_pct"] == "pass"
    assert run.check("agents_growth")["status"] == "pass"


def test_the_echo_conversation_fails_an_app_server(locust) -> None:
    """The default echo against a server that answers with JSON: every echo times out, sessions fail."""
    run = locust("--ref-server-protocol", "app", "--ws-timeout-s", "0.5", "--flap-cycles", "2")
    assert run.exit_code == 3, run.output[-3000:]
    assert ("echo", "expect timed out: not JSON") not in _failures(run)  # the greeting is JSON
    assert ("echo", "expect timed out: no message matched") in _failures(run)
    assert run.check("session_success_pct")["status"] == "fail"


def test_agents_leaked_on_drop_are_caught_behind_the_application_handshake(locust) -> None:
    """App mode creates agents only after auth; leak-agents with abrupt drops fails agents_growth."""
    run = locust(
        "--ref-server-protocol", "app", "--ws-conversation", str(EXAMPLES / "app-chat.yaml"),
        "--ref-server-fault", "leak-agents", "--flap-disconnect", "abrupt",
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("agents_growth")["status"] == "fail"


def test_agent_chat_service_passes_healthy_and_fails_garbled(start_app_server, locust) -> None:
    """An agent-chat backend (Starlette): token in the query; healthy passes, garbled answers fail sessions."""
    conversation = str(EXAMPLES / "agent-chat.yaml")
    env = {"APP_AUTH_TOKEN": TOKEN}
    healthy = start_app_server("agent_chat", env=env)
    args = ["--ws-conversation", conversation, "--ws-auth-in", "query", "--ws-timeout-s", "1"]
    metrics = ["--server-metrics-url", healthy.metrics_url, "--agents-metric", "app_agents_active"]
    run = locust("--host", healthy.url, *args, *metrics, env={"LOCUST_WS_AUTH_TOKEN": TOKEN})
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("agent-response")["Request Count"]) == 20
    assert run.check("agents_growth")["status"] == "pass"

    garbled = start_app_server("agent_chat", "--fault", "garble", env=env)
    run = locust("--host", garbled.url, *args, env={"LOCUST_WS_AUTH_TOKEN": TOKEN})
    assert run.exit_code == 3, run.output[-3000:]
    assert ("agent-response", "expect timed out: not JSON") in _failures(run)
    assert run.check("session_success_pct")["status"] == "fail"
    assert TOKEN not in run.output


def test_graphql_over_websocket_passes_healthy_and_fails_a_refused_init(start_app_server, locust) -> None:
    """A Strawberry server (graphql-transport-ws) from a raw-message JSON file; a refused init fails connects."""
    conversation = str(EXAMPLES / "graphql-hello.json")
    healthy = start_app_server("graphql_server")
    run = locust("--host", healthy.url, "--ws-conversation", conversation)
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("hello")["Failure Count"]) == 0
    assert int(run.stats_row("hello")["Request Count"]) == 20

    refusing = start_app_server("graphql_server", "--fault", "reject-init")
    run = locust("--host", refusing.url, "--ws-conversation", conversation)
    assert run.exit_code == 3, run.output[-3000:]
    assert ("init", "closed by server: 4403 application") in _failures(run)
    assert run.check("connect_success_pct")["status"] == "fail"


def test_a_server_that_closes_every_session_after_the_101_fails(start_app_server, locust) -> None:
    """Handshakes succeed but the server closes each session at once: the hold sees it, sessions fail."""
    server = start_app_server("close_after_101")
    run = locust("--host", server.url, "--no-flap-echo")
    assert run.exit_code == 3, run.output[-3000:]
    assert ("hold", "closed by server: 4406 application") in _failures(run)
    assert run.check("session_success_pct")["status"] == "fail"


def test_pings_are_answered_through_long_holds(start_app_server, locust) -> None:
    """An aiohttp server pinging every second closes clients that do not pong; 2.5 s holds pass."""
    server = start_app_server("heartbeat", "--heartbeat-s", "0.5")
    run = locust(
        "--host", server.url, "-u", "2", "--flap-cycles", "2",
        "--flap-connected-ms", "2500", "--max-recovery-ms", "1000",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    assert run.check("session_success_pct")["observed"] == 100


def test_a_bad_conversation_file_is_refused_before_any_load(tmp_path: Path, locust) -> None:
    """A file with a step of two actions: one line naming the file, the part and the step; exit 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("open:\n  - send: hi\n    expect_text: hi\n")
    run = locust("--ws-conversation", str(bad))
    assert run.exit_code == 2
    assert f"--ws-conversation: {bad}: open step 1: two actions (send, expect_text)" in run.output
    assert "Traceback" not in run.output
    assert "connect" not in run.output.split("--ws-conversation")[-1]


def test_the_python_api_example_runs_against_the_bundled_server(locust) -> None:
    """examples/custom_user.py, a conversation in Python, passes against the bundled app server alone."""
    run = locust("-f", str(EXAMPLES / "custom_user.py"), "--ref-server-protocol", "app")
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("auth")["Request Count"]) == 20
    assert int(run.stats_row("agent-response")["Failure Count"]) == 0
    with open(run.out_dir / "run_stats.csv") as file:
        names = {row["Name"] for row in csv.DictReader(file)}
    assert "echo" not in names  # the bundled default user did not run beside it


def test_the_readmes_conversation_file_runs_as_written(start_app_server, locust, tmp_path: Path) -> None:
    """The YAML of the README's conversations section, copied to a file, passes against a GraphQL server."""
    section = (ROOT / "README.md").read_text().split("## What each connection says", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block
    conversation = tmp_path / "readme.yaml"
    conversation.write_text(block.group(1))
    server = start_app_server("graphql_server")
    run = locust("--host", server.url, "--ws-conversation", str(conversation))
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("hello")["Request Count"]) == 20


def test_binary_frames_pass_between_text_frames_against_the_echo_server(locust, tmp_path: Path) -> None:
    """send_binary and expect_binary beside text steps: each expect skips the other kind; a wrong prefix fails."""
    steps = (
        "hold:\n"
        "  - send: hi ${user}\n"
        "  - send_binary: {hex: ff0a0b}\n"  # not UTF-8: only binary expects see it
        "  - expect_binary: ff0a\n"  # skips the text echo, which came first
        "    name: binary\n"
        "  - send_binary: {base64: //4=}\n"
        "  - send: bye\n"
        "  - expect_text: bye\n"  # skips the binary echo, which came first
        "    name: text\n"
    )
    good = tmp_path / "binary.yaml"
    good.write_text(steps)
    run = locust("--ws-conversation", str(good))
    assert run.exit_code == 0, run.output[-3000:]
    for row in ("binary", "text"):
        assert int(run.stats_row(row)["Request Count"]) == 20, row
        assert int(run.stats_row(row)["Failure Count"]) == 0, row

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(steps.replace("expect_binary: ff0a", "expect_binary: ffff"))
    run = locust("--ws-conversation", str(wrong), "--ws-timeout-s", "0.5", "--flap-cycles", "2")
    assert run.exit_code == 3, run.output[-3000:]
    assert ("binary", "expect timed out: no message matched") in _failures(run)
