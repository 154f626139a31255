"""Socket.IO and GraphQL over WebSocket end to end: Locust runs against python-socketio and Strawberry servers.

Healthy servers pass; a per-session memory leak fails; agents kept on abrupt drops are
caught with `abrupt` and pass with `clean` disconnects; a refused namespace or init fails
`connect_success_pct`.
"""

from __future__ import annotations

import pytest

from tests.support.locust_process import ROOT

EXAMPLES = ROOT / "examples"
SERVERS = {  # protocol -> (test server, conversation file, the fault that refuses the session)
    "socketio": ("socketio_server", EXAMPLES / "socketio-chat.yaml", "refuse-namespace"),
    "graphql-ws": ("graphql_server", EXAMPLES / "graphql-subscribe.yaml", "reject-init"),
}


def _metrics(server) -> list[str]:
    return ["--server-metrics-url", server.metrics_url, "--agents-metric", "app_agents_active"]


@pytest.mark.parametrize("protocol", sorted(SERVERS))
def test_agents_kept_on_abrupt_drops_fail_and_clean_disconnects_pass(start_app_server, locust, protocol) -> None:
    """leak-agents-on-drop: abrupt drops leave agents (fail); the protocol's clean disconnect frees them (pass)."""
    name, conversation, _ = SERVERS[protocol]
    server = start_app_server(name, "--fault", "leak-agents-on-drop")
    common = ["--host", server.url, "--ws-conversation", str(conversation), *_metrics(server)]
    clean = locust(*common, "--flap-disconnect", "clean")
    assert clean.exit_code == 0, clean.output[-3000:]
    assert clean.check("agents_growth")["status"] == "pass"
    assert clean.check("session_success_pct")["observed"] == 100
    abrupt = locust(*common, "--flap-disconnect", "abrupt")
    assert abrupt.exit_code == 3, abrupt.output[-3000:]
    assert abrupt.check("agents_growth")["status"] == "fail", abrupt.check("agents_growth")


@pytest.mark.parametrize("protocol", sorted(SERVERS))
def test_a_refused_session_fails_connect_success(start_app_server, locust, protocol) -> None:
    """A server refusing the namespace (Socket.IO) or the init (GraphQL) fails connect_success_pct."""
    name, conversation, refusal = SERVERS[protocol]
    server = start_app_server(name, "--fault", refusal)
    run = locust("--host", server.url, "--ws-conversation", str(conversation), "--flap-cycles", "2")
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("connect_success_pct")["observed"] == 0
    assert run.check("recovery_ms")["status"] == "fail"


def test_the_bundled_server_speaks_socketio_on_a_fresh_machine(locust) -> None:
    """--ws-protocol socketio with no --host: the bundled server speaks Socket.IO; the namespace row is there."""
    run = locust("--ws-protocol", "socketio", "--ws-conversation", str(EXAMPLES / "socketio-chat.yaml"))
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("namespace")["Request Count"]) >= 20
    assert int(run.stats_row("chat")["Failure Count"]) == 0


@pytest.mark.parametrize("protocol", sorted(SERVERS))
def test_a_per_session_memory_leak_fails_and_a_healthy_server_passes(start_app_server, locust, protocol) -> None:
    """128 KiB kept per session: what round 2 adds is a leak (leak_kb_per_cycle fails); healthy, it passes."""
    name, conversation, _ = SERVERS[protocol]
    rounds = ["--ws-conversation", str(conversation), "--flap-rounds", "2", "--flap-cycles", "10"]
    healthy = start_app_server(name)
    run = locust("--host", healthy.url, *rounds)
    assert run.exit_code == 0, run.output[-3000:]
    assert run.check("leak_kb_per_cycle")["status"] == "pass"
    leaking = start_app_server(name, "--fault", "leak-memory")
    run = locust("--host", leaking.url, *rounds)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("leak_kb_per_cycle")["status"] == "fail", run.check("leak_kb_per_cycle")
