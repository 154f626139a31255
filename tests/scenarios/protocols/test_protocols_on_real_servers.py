"""The Socket.IO and graphql-ws framings over the pack's own client (WsClient, Talk) against real servers on loopback.

No Locust here: one connection at a time, its rows collected, so a protocol mistake shows
as the exact failing row. Servers: the bundled refserver's Socket.IO mode, python-socketio
(ASGI on uvicorn) and Strawberry (graphql-transport-ws), each healthy and faulty.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scenarios.client import WsClient
from scenarios.exchange import StepFailed
from scenarios.protocols import load_conversation_text
from scenarios.settings import ClientSettings
from scenarios.ws_session import WsFailure
from tests.refserver.helpers import scrape, wait_for_metric

TOKEN = "tok-protocols-7d3a"
Rows = list[tuple[str, str | None]]

SOCKETIO_TALK = """\
protocol: socketio
open:
  - expect_event: welcome
    name: welcome
hold:
  - emit: [chat, {text: "hi ${user}"}]
    ack: {ok: true}
    name: chat
"""

GRAPHQL_TALK = """\
protocol: graphql-ws
hold:
  - subscribe: "subscription { hello }"
    expect: {data: {hello: world}}
    name: hello
  - subscribe: "subscription ($n: Int!) { count(to: $n) }"
    variables: {n: 2}
    expect: {data: {count: 2}}
    name: count
  - subscribe: "subscription { greetings(intervalMs: 50) }"
    keep_open: true
    name: greetings
"""


def _talk(
    host: str,
    text: str,
    *,
    token: str = "",
    auth_in: str = "header",
    end: Callable[..., None] | None = None,
    hold_s: float = 0.0,
) -> Rows:
    """Connect, run the open steps (protocol's first), the hold steps, idle, then a clean close with the goodbye."""
    conversation = load_conversation_text(text, "talk.yaml")
    client = WsClient(ClientSettings(timeout_s=5.0, auth_token=token, auth_in=auth_in, conversation=conversation))
    rows: Rows = []

    def report(name: str, started: float, length: int, failure: WsFailure | None) -> None:
        rows.append((name, failure.message if failure is not None else None))

    session = client.session(host)
    session.connect()
    talk = client.talk(session, report, user=4)
    try:
        talk.run(client.protocol.opening() + conversation.open)
        talk.run(conversation.hold)
        talk.idle_until(time.perf_counter() + hold_s)
        if end is None:
            talk.run(conversation.close)
            talk.close_clean()
        else:
            end(session)
    except StepFailed:
        pass
    return rows


# --- Socket.IO -----------------------------------------------------------------------------------


def test_socketio_on_the_bundled_server_connects_greets_and_acks(start_server) -> None:
    """refserver --protocol socketio: namespace, welcome and chat rows pass; a clean close frees the agent."""
    server = start_server("--protocol", "socketio", "--ping-interval-ms", "100", "--leak-agents-on-drop")
    rows = _talk(server.url, SOCKETIO_TALK, hold_s=0.5)  # five server pings answered during the hold
    assert rows == [("namespace", None), ("welcome", None), ("chat", None)]
    wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
    assert scrape(server.metrics_url)["refserver_active_agents"] == 0


def test_socketio_abrupt_drops_leak_agents_on_the_faulty_bundled_server(start_server) -> None:
    """An abrupt end (no DISCONNECT, no close frame) leaves the agent behind only under --leak-agents-on-drop."""
    for fault, agents in ((["--leak-agents-on-drop"], 1), ([], 0)):
        server = start_server("--protocol", "socketio", *fault)
        rows = _talk(server.url, SOCKETIO_TALK, end=lambda session: session.close_abrupt())
        assert rows == [("namespace", None), ("welcome", None), ("chat", None)]
        wait_for_metric(server.metrics_url, "refserver_active_connections", lambda v: v == 0)
        assert scrape(server.metrics_url)["refserver_active_agents"] == agents


def test_socketio_token_in_the_connect_payload(start_server) -> None:
    """With --ws-auth-in payload the token rides in CONNECT; a wrong one fails `namespace refused: unauthorized`."""
    server = start_server("--protocol", "socketio", env={"REFSERVER_AUTH_TOKEN": TOKEN})
    assert _talk(server.url, SOCKETIO_TALK, token=TOKEN, auth_in="payload")[0] == ("namespace", None)
    rows = _talk(server.url, SOCKETIO_TALK, token="wrong-token", auth_in="payload")
    assert rows == [("namespace", "namespace refused: unauthorized")]


def test_socketio_on_python_socketio(start_app_server) -> None:
    """python-socketio (ASGI on uvicorn): namespace, welcome and the chat ack pass; its agent is freed after."""
    server = start_app_server("socketio_server", env={"APP_AUTH_TOKEN": TOKEN})
    rows = _talk(server.url, SOCKETIO_TALK, token=TOKEN, auth_in="payload")
    assert rows == [("namespace", None), ("welcome", None), ("chat", None)]
    wait_for_metric(server.metrics_url, "app_agents_active", lambda v: v == 0)


def test_socketio_refused_namespace_on_python_socketio(start_app_server) -> None:
    """python-socketio refusing every namespace: the namespace row fails with its class, and nothing else runs."""
    server = start_app_server("socketio_server", "--fault", "refuse-namespace")
    assert _talk(server.url, SOCKETIO_TALK) == [("namespace", "namespace refused: invalid namespace")]


def test_socketio_chat_namespace_on_python_socketio(start_app_server) -> None:
    """The `namespace:` setting connects /chat; events and acks flow there."""
    server = start_app_server("socketio_server")
    rows = _talk(server.url, "namespace: /chat\n" + SOCKETIO_TALK)
    assert rows == [("namespace", None), ("welcome", None), ("chat", None)]


# --- graphql-transport-ws ------------------------------------------------------------------------


def test_graphql_on_strawberry_subscribes_and_completes(start_app_server) -> None:
    """Strawberry: init, two subscriptions matched and completed, one kept open in the hold, completed by goodbye."""
    server = start_app_server("graphql_server", env={"APP_AUTH_TOKEN": TOKEN})
    rows = _talk(server.url, GRAPHQL_TALK, token=TOKEN, auth_in="payload", hold_s=0.3)
    assert rows == [("init", None), ("hello", None), ("count", None), ("greetings", None)]
    wait_for_metric(server.metrics_url, "app_agents_active", lambda v: v == 0)


def test_graphql_refused_init_is_named_by_its_close_code(start_app_server) -> None:
    """A server refusing connection_init closes with 4403: the init row says `closed by server: 4403 forbidden`."""
    server = start_app_server("graphql_server", env={"APP_AUTH_TOKEN": TOKEN})
    assert _talk(server.url, GRAPHQL_TALK, token="wrong", auth_in="payload") == [
        ("init", "closed by server: 4403 forbidden")
    ]


@pytest.mark.parametrize("query", ["subscription { nope }", "subscription { count(to: 0) }"])
def test_graphql_errors_and_empty_results_fail_the_step(start_app_server, query: str) -> None:
    """An invalid operation fails `subscription error`; one completed with no result `completed without data`."""
    server = start_app_server("graphql_server")
    rows = _talk(server.url, f'protocol: graphql-ws\nhold:\n  - subscribe: "{query}"\n    name: op\n')
    expected = "subscription error" if "nope" in query else "completed without data"
    assert rows == [("init", None), ("op", expected)]


def test_the_example_files_run_against_their_servers(start_server, start_app_server) -> None:
    """examples/socketio-chat.yaml passes on the bundled server, examples/graphql-subscribe.yaml on Strawberry."""
    with open("examples/socketio-chat.yaml", encoding="utf-8") as file:
        socketio_talk = file.read()
    with open("examples/graphql-subscribe.yaml", encoding="utf-8") as file:
        graphql_talk = file.read()
    assert _talk(start_server("--protocol", "socketio").url, socketio_talk) == [
        ("namespace", None),
        ("welcome", None),
        ("chat", None),
    ]
    assert _talk(start_app_server("graphql_server").url, graphql_talk) == [("init", None), ("hello", None)]
