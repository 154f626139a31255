"""graphql-transport-ws framing, with scripted frames: init and ack, pings, subscribe, complete, close codes."""

from __future__ import annotations

import json

import pytest

from scenarios.conversation import ConversationError, Variables, make_step
from scenarios.protocols import describe_close_code, load_conversation_text, make_protocol
from scenarios.protocols.graphql_ws import GraphQLWSFraming, GraphQLWSProtocol
from tests.scenarios.protocols.scripted import TIMED_OUT, feed, run_step

TOKEN = "s3cret-token"
V = Variables(user=3, cycle=7, token=TOKEN)
ACK = '{"type":"connection_ack"}'


def _protocol(text: str = "protocol: graphql-ws\n", auth_in_payload: bool = False) -> GraphQLWSProtocol:
    protocol = make_protocol(load_conversation_text(text, "gql.yaml"), auth_in_payload)
    assert isinstance(protocol, GraphQLWSProtocol)
    return protocol


def _acknowledged(protocol: GraphQLWSProtocol | None = None) -> GraphQLWSFraming:
    """A framing past init, as after the opening step."""
    protocol = protocol or _protocol()
    framing = protocol.connection()
    assert run_step(framing, protocol.opening()[0], V, [ACK]).result == "matched"
    return framing


def _next(op_id: str, data: object) -> str:
    return json.dumps({"id": op_id, "type": "next", "payload": {"data": data}})


def _sent(frames: list[str]) -> list[dict[str, object]]:
    return [json.loads(frame) for frame in frames]


# --- handshake and init --------------------------------------------------------------------------


def test_the_subprotocol_is_offered_after_the_conversations_own() -> None:
    """graphql-transport-ws is offered automatically, once, after the file's subprotocols."""
    assert _protocol().subprotocols == ("graphql-transport-ws",)
    assert _protocol("protocol: graphql-ws\nsubprotocols: [x]\n").subprotocols == ("x", "graphql-transport-ws")
    both = "protocol: graphql-ws\nsubprotocols: [graphql-transport-ws, x]\n"
    assert _protocol(both).subprotocols == ("graphql-transport-ws", "x")
    assert _protocol().url("ws://h:1/graphql?a=b") == "ws://h:1/graphql?a=b"


def test_init_sends_connection_init_and_waits_for_the_ack() -> None:
    """The `init` row sends connection_init without payload and matches connection_ack, skipping others."""
    protocol = _protocol()
    framing = protocol.connection()
    (step,) = protocol.opening()
    assert step.name == "init"
    run = run_step(framing, step, V, ['{"type":"pong"}', '{"type":"connection_ack","payload":{"v":1}}'])
    assert _sent(run.sent) == [{"type": "connection_init"}]
    assert run.result == "matched"
    assert framing.acknowledged and framing.ack_payload == {"v": 1}


def test_the_token_and_the_init_payload_setting_go_in_connection_init() -> None:
    """auth_in_payload adds {"token": ...}; `init_payload:` is sent with its variables substituted."""
    run = run_step(_protocol(auth_in_payload=True).connection(), _protocol().opening()[0], V, [ACK])
    assert _sent(run.sent) == [{"type": "connection_init", "payload": {"token": TOKEN}}]
    protocol = _protocol('protocol: graphql-ws\ninit_payload: {Authorization: "Bearer ${token}", u: "${user}"}\n')
    run = run_step(protocol.connection(), protocol.opening()[0], V, [ACK])
    assert _sent(run.sent) == [{"type": "connection_init", "payload": {"Authorization": f"Bearer {TOKEN}", "u": "3"}}]


def test_without_an_ack_init_times_out_saying_so() -> None:
    """No connection_ack: `connection_ack timed out`."""
    protocol = _protocol()
    run = run_step(protocol.connection(), protocol.opening()[0], V, ['{"type":"pong"}'])
    assert run.result == TIMED_OUT + "connection_ack timed out"


def test_pings_are_answered_with_pongs_echoing_the_payload() -> None:
    """A ping gets a pong at once (its payload echoed) and is no message; a pong is a message."""
    framing = _acknowledged()
    sent, count = feed(framing, ['{"type":"ping"}', '{"type":"ping","payload":{"t":1}}', '{"type":"pong"}'])
    assert _sent(sent) == [{"type": "pong"}, {"type": "pong", "payload": {"t": 1}}]
    assert count == 1
    protocol = _protocol()
    run = run_step(protocol.connection(), protocol.opening()[0], V, ['{"type":"ping"}', ACK])
    assert _sent(run.sent) == [{"type": "connection_init"}, {"type": "pong"}]


# --- subscribe -----------------------------------------------------------------------------------


def test_subscribe_waits_for_the_matching_next_then_completes_the_operation() -> None:
    """subscribe sends id s1 with query and variables; a matching next matches and the step sends complete."""
    framing = _acknowledged()
    step = make_step(
        "subscribe",
        "subscription ($r: String!) { news(room: $r) }",
        "news",
        options={"variables": {"r": "room-${user}"}, "expect": {"data": {"news": "hello"}}},
    )
    frames = [_next("s9", {"news": "hello"}), _next("s1", {"news": "other"}), _next("s1", {"news": "hello", "n": 1})]
    run = run_step(framing, step, V, frames)
    assert run.result == "matched"
    assert _sent(run.sent) == [
        {
            "id": "s1",
            "type": "subscribe",
            "payload": {"query": "subscription ($r: String!) { news(room: $r) }", "variables": {"r": "room-3"}},
        },
        {"id": "s1", "type": "complete"},
    ]
    assert framing.goodbye() == ()


def test_ids_are_fresh_per_operation_and_start_again_per_connection() -> None:
    """Each subscribe of a connection gets the next id; a new connection starts at s1 again."""
    protocol = _protocol()
    framing = _acknowledged(protocol)
    step = make_step("subscribe", "{ hello }", "hello")
    assert json.loads(run_step(framing, step, V, [_next("s1", 1)]).sent[0])["id"] == "s1"
    assert json.loads(run_step(framing, step, V, [_next("s2", 1)]).sent[0])["id"] == "s2"
    assert json.loads(run_step(_acknowledged(protocol), step, V, [_next("s1", 1)]).sent[0])["id"] == "s1"


def test_without_expect_any_next_of_the_operation_matches() -> None:
    """No `expect:`: the operation's first next matches; other operations' messages are skipped."""
    step = make_step("subscribe", "{ hello }", "hello")
    frames = ['{"id":"s7","type":"complete"}', _next("s1", None)]
    assert run_step(_acknowledged(), step, V, frames).result == "matched"


def test_an_error_for_the_operation_fails_the_step_and_leaves_nothing_to_complete() -> None:
    """`error` for the id: `subscription error` (never the server's messages); goodbye completes nothing."""
    framing = _acknowledged()
    error = '{"id":"s1","type":"error","payload":[{"message":"token s3cret-token expired"}]}'
    run = run_step(framing, make_step("subscribe", "{ hello }", "hello"), V, [error])
    assert run.result == "subscription error"
    assert framing.goodbye() == ()


def test_a_complete_before_a_matching_next_fails_the_step() -> None:
    """The server completes the operation with no matching next: `completed without data`, no complete sent."""
    framing = _acknowledged()
    step = make_step("subscribe", "{ hello }", "hello", options={"expect": {"data": {"hello": "world"}}})
    run = run_step(framing, step, V, [_next("s1", {"hello": "moon"}), '{"id":"s1","type":"complete"}'])
    assert run.result == "completed without data"
    assert len(run.sent) == 1
    assert framing.goodbye() == ()


def test_a_subscription_that_times_out_is_completed_by_goodbye() -> None:
    """Nothing matched: `subscription timed out: no next matched`; the clean close completes the operation."""
    framing = _acknowledged()
    step = make_step("subscribe", "{ hello }", "hello", options={"expect": {"data": {"hello": "world"}}})
    run = run_step(framing, step, V, [_next("s1", {"hello": "moon"})])
    assert run.result == TIMED_OUT + "subscription timed out: no next matched"
    assert run_step(framing, step, V, []).result == TIMED_OUT + "subscription timed out"
    assert _sent(list(framing.goodbye())) == [{"id": "s1", "type": "complete"}, {"id": "s2", "type": "complete"}]
    assert framing.goodbye() == ()


def test_keep_open_leaves_the_subscription_open_for_the_hold_and_goodbye_completes_it() -> None:
    """With keep_open the match sends no complete; later nexts are counted; goodbye completes the operation."""
    framing = _acknowledged()
    step = make_step("subscribe", "subscription { ticks }", "ticks", options={"keep_open": True})
    run = run_step(framing, step, V, [_next("s1", 1)])
    assert run.result == "matched" and len(run.sent) == 1
    assert feed(framing, [_next("s1", 2), _next("s1", 3)]) == ([], 2)
    assert _sent(list(framing.goodbye())) == [{"id": "s1", "type": "complete"}]


def test_a_kept_subscription_the_server_completed_is_not_completed_again() -> None:
    """When the server completes a kept operation, goodbye leaves it alone."""
    framing = _acknowledged()
    step = make_step("subscribe", "subscription { ticks }", "ticks", options={"keep_open": True})
    run_step(framing, step, V, [_next("s1", 1)])
    feed(framing, ['{"id":"s1","type":"complete"}'])
    assert framing.goodbye() == ()


def test_raw_send_and_expect_work_on_the_json_messages() -> None:
    """`send` sends JSON as is; `expect` matches a raw message such as a pong or a next."""
    framing = _acknowledged()
    assert run_step(framing, make_step("send", {"type": "ping"}, "p"), V, []).sent == ['{"type":"ping"}']
    run = run_step(framing, make_step("expect", {"type": "pong"}, "pong"), V, ["not json", '{"type":"pong"}'])
    assert run.result == "matched"
    run = run_step(framing, make_step("expect", {"type": "pong"}, "pong"), V, ["not json"])
    assert run.result == TIMED_OUT + "expect timed out: not JSON"


# --- close codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (4400, "closed by server: 4400 bad request"),
        (4401, "closed by server: 4401 unauthorized"),
        (4403, "closed by server: 4403 forbidden"),
        (4406, "closed by server: 4406 subprotocol not acceptable"),
        (4408, "closed by server: 4408 connection initialisation timeout"),
        (4409, "closed by server: 4409 subscriber already exists"),
        (4429, "closed by server: 4429 too many initialisation requests"),
        (4500, "closed by server: 4500 internal server error"),
        (4321, "closed by server: 4321 application"),
        (1011, "closed by server: 1011 internal error"),
    ],
)
def test_the_protocols_close_codes_are_named(code: int, text: str) -> None:
    """The server's 44xx and 4500 codes are reported by name; others as the generic classes."""
    assert describe_close_code(code, _acknowledged().close_names()) == text


# --- conversation files --------------------------------------------------------------------------

GOOD_FILE = """\
protocol: graphql-ws
init_payload: {Authorization: "Bearer ${token}"}
hold:
  - subscribe: "subscription { hello }"
    variables: {n: 1}
    expect: {data: {hello: world}}
    name: hello
  - subscribe: "{ time }"
    keep_open: true
"""


def test_a_graphql_file_parses_its_actions_and_settings() -> None:
    """subscribe with variables, expect and keep_open, and init_payload come out of the file."""
    conversation = load_conversation_text(GOOD_FILE, "gql.yaml")
    assert conversation.protocol == "graphql-ws"
    assert conversation.settings == {"init_payload": {"Authorization": "Bearer ${token}"}}
    assert [(s.action, s.name) for s in conversation.hold] == [("subscribe", "hello"), ("subscribe", "hold-2")]
    assert conversation.hold[0].options == {"variables": {"n": 1}, "expect": {"data": {"hello": "world"}}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hold:\n  - subscribe: ''\n", "gql.yaml: hold step 1: subscribe takes a GraphQL query"),
        ("hold:\n  - subscribe: {a: 1}\n", "gql.yaml: hold step 1: subscribe takes a GraphQL query"),
        ("open:\n  - subscribe: q\n    variables: [1]\n", "gql.yaml: open step 1: variables: must be a mapping"),
        ("hold:\n  - subscribe: q\n    keep_open: 1\n", "gql.yaml: hold step 1: keep_open: must be true or false"),
        ("hold:\n  - subscribe: q\n    ack: 1\n", "gql.yaml: hold step 1: unknown key 'ack' for subscribe"),
        ("open:\n  - send: {type: connection_init}\n", "gql.yaml: open step 1: connection_init is sent by"),
        ("init_payload: 5\n", "gql.yaml: init_payload: must be a mapping"),
        ("init_payload: {a: '${x}'}\n", "gql.yaml: init_payload: unknown variable ${x}"),
        ("hold:\n  - emit: [a]\n", "gql.yaml: hold step 1: no action"),
    ],
)
def test_a_bad_graphql_step_or_setting_is_one_line_naming_the_place(text: str, message: str) -> None:
    """Bad steps and settings raise one ConversationError line naming the file, the part and the step."""
    with pytest.raises(ConversationError) as error:
        load_conversation_text("protocol: graphql-ws\n" + text, "gql.yaml")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_the_protocol_can_come_from_the_option_when_the_file_names_none() -> None:
    """--ws-protocol graphql-ws applies to a file without `protocol:`; JSON files work too."""
    conversation = load_conversation_text('{"hold": [{"subscribe": "{ a }"}]}', "gql.json", protocol="graphql-ws")
    assert conversation.protocol == "graphql-ws" and conversation.hold[0].action == "subscribe"
