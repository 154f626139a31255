"""Socket.IO 5 over Engine.IO 4 framing, with scripted frames: packets, the namespace connect, acks, events."""

from __future__ import annotations

from typing import Any

import pytest

from scenarios.continuity import ContinuityCounts, UserCarry
from scenarios.conversation import Conversation, ConversationError, Variables, make_step
from scenarios.protocols import load_conversation_text, make_protocol
from scenarios.protocols.socketio import (
    ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    Packet,
    PacketError,
    SocketIOFraming,
    SocketIOProtocol,
    connect_error_class,
    decode_packet,
    encode_packet,
)
from tests.scenarios.protocols.scripted import TIMED_OUT, feed, run_step

OPEN = '0{"sid":"eio1","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}'
TOKEN = "s3cret-token"
V = Variables(user=3, cycle=7, token=TOKEN)


def _protocol(text: str = "protocol: socketio\n", auth_in_payload: bool = False) -> SocketIOProtocol:
    protocol = make_protocol(load_conversation_text(text, "chat.yaml"), auth_in_payload)
    assert isinstance(protocol, SocketIOProtocol)
    return protocol


def _connected(protocol: SocketIOProtocol) -> SocketIOFraming:
    """A framing whose namespace is connected, as after the opening step."""
    framing = protocol.connection()
    run = run_step(framing, protocol.opening()[0], V, [OPEN, "40" if protocol.namespace == "/" else "40/chat,{}"])
    assert run.result == "matched"
    return framing


# --- packets, as in the protocol document's encoding tables ------------------------------------

SPEC_PACKETS = [
    ("0", Packet(CONNECT)),
    ('0{"sid":"wZX3oN0bSVIhsaknAAAI"}', Packet(CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"})),
    ("0/admin,", Packet(CONNECT, "/admin")),
    ('4{"message":"Not authorized"}', Packet(CONNECT_ERROR, data={"message": "Not authorized"})),
    ('2["foo"]', Packet(EVENT, data=["foo"])),
    ('2/admin,["bar"]', Packet(EVENT, "/admin", ["bar"])),
    ('212["foo"]', Packet(EVENT, data=["foo"], id=12)),
    ("312[]", Packet(ACK, data=[], id=12)),
    ('2/admin,13["foo"]', Packet(EVENT, "/admin", ["foo"], 13)),
    ('3/admin,13["bar"]', Packet(ACK, "/admin", ["bar"], 13)),
    ("1", Packet(DISCONNECT)),
    ("1/admin,", Packet(DISCONNECT, "/admin")),
]


@pytest.mark.parametrize(("text", "packet"), SPEC_PACKETS)
def test_packets_encode_and_decode_as_the_protocol_document_shows(text: str, packet: Packet) -> None:
    """Every example of the Socket.IO v5 encoding table decodes to its packet and encodes back to the same text."""
    decoded = decode_packet(text)
    assert (decoded.type, decoded.namespace, decoded.data, decoded.id) == (
        packet.type,
        packet.namespace,
        packet.data,
        packet.id,
    )
    assert encode_packet(packet.type, packet.namespace, packet.data, packet.id) == text


def test_a_binary_event_decodes_with_its_attachment_count() -> None:
    """`52-/admin,[...]` is a BINARY_EVENT on /admin announcing two attachments."""
    packet = decode_packet('52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert (packet.type, packet.namespace, packet.attachments, packet.data[0]) == (BINARY_EVENT, "/admin", 2, "baz")


@pytest.mark.parametrize(
    "text",
    ["", "7", "x", "2", '2{"a":1}', "2[1]", "2[]", '2["a"', "3[]", "3x", '5["a"]', "1{}", "0[1]"],
)
def test_malformed_packets_are_refused(text: str) -> None:
    """Unknown types, events without a name, acks without an id, bad JSON: PacketError, never a crash."""
    with pytest.raises(PacketError):
        decode_packet(text)


# --- the URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "host", "url", "namespace"),
    [
        ("", "ws://127.0.0.1:8765/", "ws://127.0.0.1:8765/socket.io/?EIO=4&transport=websocket", "/"),
        ("", "ws://127.0.0.1:8765", "ws://127.0.0.1:8765/socket.io/?EIO=4&transport=websocket", "/"),
        ("", "ws://h:1/?token=t", "ws://h:1/socket.io/?token=t&EIO=4&transport=websocket", "/"),
        ("", "ws://h:1/?EIO=3&a=b", "ws://h:1/socket.io/?a=b&EIO=4&transport=websocket", "/"),
        ("", "http://h:1/", "ws://h:1/socket.io/?EIO=4&transport=websocket", "/"),
        ("", "wss://h/chat", "wss://h/socket.io/?EIO=4&transport=websocket", "/chat"),
        ("namespace: /admin\n", "ws://h/chat", "ws://h/socket.io/?EIO=4&transport=websocket", "/admin"),
        ("path: /rt/\n", "ws://h:1/", "ws://h:1/rt/?EIO=4&transport=websocket", "/"),
    ],
)
def test_the_url_is_the_engine_io_path_with_the_hosts_query(settings: str, host: str, url: str, namespace: str) -> None:
    """--host's scheme, address and query, the `path` setting, EIO=4 and websocket; a host path names the namespace."""
    protocol = _protocol("protocol: socketio\n" + settings)
    assert protocol.url(host) == url
    assert protocol.namespace == namespace


# --- opening: the open packet, then the namespace ------------------------------------------------


def test_the_namespace_connect_waits_for_the_open_packet_then_for_the_connect_answer() -> None:
    """CONNECT goes out once the Engine.IO open packet came; the step matches the server's CONNECT."""
    protocol = _protocol()
    framing = protocol.connection()
    (step,) = protocol.opening()
    assert step.name == "namespace"
    run = run_step(framing, step, V, [OPEN, '40{"sid":"ns1"}'])
    assert run.sent == ["40"]
    assert run.result == "matched"
    assert (framing.ping_interval_ms, framing.ping_timeout_ms, framing.sid) == (300, 200, "ns1")
    assert framing.connected and framing.ended is None


def test_when_the_open_packet_was_already_read_the_connect_goes_out_at_once() -> None:
    """An I/O layer that read the open packet first gets the CONNECT from the step itself."""
    protocol = _protocol()
    framing = protocol.connection()
    assert feed(framing, [OPEN]) == ([], 0)
    run = run_step(framing, protocol.opening()[0], V, ["40"])
    assert run.sent == ["40"] and run.result == "matched"


def test_the_token_goes_in_the_connect_auth_payload_of_the_namespace() -> None:
    """With auth_in_payload the CONNECT carries {"token": ...} on the file's namespace."""
    protocol = _protocol("protocol: socketio\nnamespace: /chat\n", auth_in_payload=True)
    framing = protocol.connection()
    run = run_step(framing, protocol.opening()[0], V, [OPEN, '40/chat,{"sid":"x"}'])
    assert run.sent == ['40/chat,{"token":"s3cret-token"}']
    assert run.result == "matched"


def test_the_auth_setting_is_the_connect_payload_with_variables() -> None:
    """`auth:` is sent as the CONNECT payload, `${token}` and `${user}` substituted."""
    protocol = _protocol('protocol: socketio\nauth: {jwt: "${token}", user: "u${user}"}\n')
    run = run_step(protocol.connection(), protocol.opening()[0], V, [OPEN, "40"])
    assert run.sent == ['40{"jwt":"s3cret-token","user":"u3"}']


def test_a_connect_error_fails_the_namespace_with_its_class_never_its_text() -> None:
    """CONNECT_ERROR fails the step `namespace refused: unauthorized`; the server's message is not quoted."""
    protocol = _protocol()
    framing = protocol.connection()
    run = run_step(framing, protocol.opening()[0], V, [OPEN, '44{"message":"bad token s3cret-token"}'])
    assert run.result == "namespace refused: unauthorized"
    assert framing.ended == "namespace refused: unauthorized"
    assert framing.goodbye() == ()


@pytest.mark.parametrize(
    ("data", "klass"),
    [
        ({"message": "Invalid namespace"}, "invalid namespace"),
        ({"message": "Not authorized"}, "unauthorized"),
        ({"message": "authentication failed"}, "unauthorized"),
        ({"message": "Connection rejected by server"}, "rejected"),
        ({"message": "x7Yq"}, "rejected"),
        ("Not authorized", "unauthorized"),
        (None, "rejected"),
        ({"data": 1}, "rejected"),
    ],
)
def test_connect_errors_are_classified(data: Any, klass: str) -> None:
    """A CONNECT_ERROR's message maps to a class: invalid namespace, unauthorized or rejected."""
    assert connect_error_class(data) == klass


def test_without_an_open_packet_the_namespace_step_times_out_saying_so() -> None:
    """No Engine.IO open packet: the timeout says `engine.io open timed out`, and no CONNECT was sent."""
    protocol = _protocol()
    run = run_step(protocol.connection(), protocol.opening()[0], V, [])
    assert run.sent == []
    assert run.result == TIMED_OUT + "engine.io open timed out"
    run = run_step(protocol.connection(), protocol.opening()[0], V, [OPEN])
    assert run.result == TIMED_OUT + "namespace connect timed out"


# --- Engine.IO packets ---------------------------------------------------------------------------


def test_pings_are_answered_at_once_at_any_time() -> None:
    """Engine.IO ping `2` is answered `3` before the open, during a step and between steps; it is no message."""
    protocol = _protocol()
    framing = protocol.connection()
    assert feed(framing, ["2"]) == (["3"], 0)
    run = run_step(framing, protocol.opening()[0], V, [OPEN, "2", "40"])
    assert run.sent == ["40", "3"]
    assert feed(framing, ["2", "6", "3", "2"]) == (["3", "3"], 0)


def test_an_engine_io_close_fails_the_awaited_step_and_ends_the_session() -> None:
    """Engine.IO `1` fails the awaited step `closed by server: engine.io close`."""
    framing = _connected(_protocol())
    step = make_step("expect_event", "news", "news")
    run = run_step(framing, step, V, ["1"])
    assert run.result == "closed by server: engine.io close"
    assert framing.ended == "closed by server: engine.io close"


def test_an_unknown_engine_io_packet_ends_the_session() -> None:
    """A frame that is no Engine.IO packet marks the session ended as malformed."""
    framing = _connected(_protocol())
    feed(framing, ["9hello"])
    assert framing.ended == "malformed Engine.IO packet"


# --- emit and acks -------------------------------------------------------------------------------


def test_emit_with_ack_waits_for_its_ack_and_ids_count_per_connection() -> None:
    """Ack ids start at 0 on every connection; an ack for another id is skipped; the right one matches."""
    protocol = _protocol()
    step = make_step("emit", ["chat", {"text": "hi ${user}"}], "chat", options={"ack": {"ok": True}})
    framing = _connected(protocol)
    run = run_step(framing, step, V, ['437[{"ok":true}]', '430[{"ok":true,"n":1}]'])
    assert run.sent == ['420["chat",{"text":"hi 3"}]']
    assert run.result == "matched"
    run = run_step(framing, step, V, ['431[{"ok":true}]'])
    assert run.sent == ['421["chat",{"text":"hi 3"}]'] and run.result == "matched"
    assert run_step(_connected(protocol), step, V, ["430[{}]"]).sent == ['420["chat",{"text":"hi 3"}]']


def test_an_ack_that_does_not_contain_the_subset_fails_the_emit() -> None:
    """The ack comes once: when its first argument lacks the subset the step fails `ack did not match`."""
    step = make_step("emit", ["chat", 1], "chat", options={"ack": {"ok": True}})
    assert run_step(_connected(_protocol()), step, V, ['430[{"ok":false}]']).result == "ack did not match"
    assert run_step(_connected(_protocol()), step, V, ["430[]"]).result == "ack did not match"


def test_ack_null_takes_any_ack_and_a_missing_ack_times_out() -> None:
    """`ack: null` matches any ack with the id; no ack: `ack timed out`."""
    step = make_step("emit", "ping", "ping", options={"ack": None})
    assert run_step(_connected(_protocol()), step, V, ["430[]"]).result == "matched"
    assert run_step(_connected(_protocol()), step, V, ['42["x"]']).result == TIMED_OUT + "ack timed out"


def test_emit_without_ack_only_sends() -> None:
    """An emit with no `ack` sends its EVENT and waits for nothing; `emit: EVENT` sends the name alone."""
    framing = _connected(_protocol())
    run = run_step(framing, make_step("emit", ["chat", "x", 2], "chat"), V, [])
    assert (run.sent, run.result) == (['42["chat","x",2]'], None)
    assert run_step(framing, make_step("emit", "hello", "hello"), V, []).sent == ['42["hello"]']


def test_events_and_acks_use_the_namespace_and_skip_other_namespaces() -> None:
    """On /chat an emit is `42/chat,...`, its ack `43/chat,0[...]`; packets of / are skipped."""
    protocol = _protocol("protocol: socketio\nnamespace: /chat\n")
    framing = _connected(protocol)
    step = make_step("emit", ["chat"], "chat", options={"ack": None})
    run = run_step(framing, step, V, ["430[]", '42["chat"]', "43/chat,0[]"])
    assert run.sent == ['42/chat,0["chat"]']
    assert (run.result, run.messages) == ("matched", 1)
    assert framing.goodbye() == ("41/chat,",)


def test_a_binary_ack_for_the_awaited_id_fails_the_emit() -> None:
    """Binary acks are not supported: one for the awaited id fails the step."""
    step = make_step("emit", ["file"], "file", options={"ack": None})
    run = run_step(_connected(_protocol()), step, V, ['461-0[{"_placeholder":true,"num":0}]'])
    assert run.result == "binary acks not supported"


# --- expect_event and raw expects ----------------------------------------------------------------


def test_expect_event_waits_for_the_event_whose_first_argument_contains_data() -> None:
    """Other events and the same event with other data are skipped; the matching one matches."""
    step = make_step("expect_event", "welcome", "welcome", options={"data": {"user": "${user}"}})
    frames = ['42["news",{"user":"3"}]', '42["welcome",{"user":"9"}]', '42["welcome",{"user":"3","n":1}]']
    assert run_step(_connected(_protocol()), step, V, frames).result == "matched"


def test_expect_event_times_out_saying_whether_the_event_came_with_other_data() -> None:
    """The timeout says `data did not match` when the event came with other data."""
    step = make_step("expect_event", "welcome", "welcome", options={"data": {"user": "3"}})
    run = run_step(_connected(_protocol()), step, V, ['42["welcome",{"user":"9"}]', '42["welcome"]'])
    assert run.result == TIMED_OUT + "expect_event timed out: data did not match"
    run = run_step(_connected(_protocol()), step, V, ['42["news"]'])
    assert run.result == TIMED_OUT + "expect_event timed out"


def test_a_binary_event_fails_its_expect_event_and_is_skipped_otherwise() -> None:
    """A BINARY_EVENT of the awaited name fails the step; one of another name is skipped."""
    binary = '451-["file",{"_placeholder":true,"num":0}]'
    step = make_step("expect_event", "file", "file")
    assert run_step(_connected(_protocol()), step, V, [binary]).result == "binary events not supported"
    step = make_step("expect_event", "news", "news")
    assert run_step(_connected(_protocol()), step, V, [binary, "\x01", '42["news"]']).result == "matched"


def test_binary_attachments_are_skipped_whatever_they_look_like() -> None:
    """The frames a binary packet announces (here one that looks like an event) are skipped, then reading goes on."""
    framing = _connected(_protocol())
    frames = [
        '452-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        "\x01\x02",
        '42["x"]',
        '42["y"]',
    ]
    assert feed(framing, frames) == ([], 2)
    assert framing.ended is None
    frames = ['451-/other,["file",{"_placeholder":true,"num":0}]', "\x00junk", "2"]
    assert feed(framing, frames) == (["3"], 0)
    assert framing.ended is None


def test_a_server_disconnect_fails_the_awaited_step_and_ends_the_session() -> None:
    """The server's DISCONNECT of the namespace fails the step; goodbye then sends nothing."""
    framing = _connected(_protocol())
    run = run_step(framing, make_step("expect_event", "news", "news"), V, ["41"])
    assert run.result == "namespace disconnected by server"
    assert framing.ended == "namespace disconnected by server" and not framing.connected
    assert framing.goodbye() == ()


def test_send_emits_the_message_event_and_raw_expects_see_event_payloads() -> None:
    """`send` is the client's socket.send (the `message` event); `expect` tests the event's JSON array."""
    framing = _connected(_protocol())
    assert run_step(framing, make_step("send", {"q": 1}, "s"), V, []).sent == ['42["message",{"q":1}]']
    expect = make_step("expect", ["message", {"a": 1}], "e")
    assert run_step(framing, expect, V, ["430[]", '42["message",{"a":1,"b":2}]']).result == "matched"
    text = make_step("expect_text", '["pong"]', "t")
    assert run_step(framing, text, V, ['42["pong"]']).result == "matched"
    run = run_step(framing, make_step("expect_regex", "never", "r"), V, ['42["pong"]'])
    assert run.result == TIMED_OUT + "expect timed out: no message matched"


def test_goodbye_is_the_namespace_disconnect() -> None:
    """A clean close sends `41` on the main namespace, as the official client does."""
    assert _connected(_protocol()).goodbye() == ("41",)


def test_hold_frames_are_counted_and_pings_answered() -> None:
    """Between steps, events of the namespace count as messages and pings get pongs."""
    framing = _connected(_protocol())
    assert feed(framing, ['42["a"]', "2", '42/other,["b"]', '42["c",1]']) == (["3"], 2)


# --- conversation files --------------------------------------------------------------------------

GOOD_FILE = """\
protocol: socketio
namespace: /chat
open:
  - expect_event: welcome
    data: {room: lobby}
hold:
  - emit: [chat, {text: "hi ${user}"}]
    ack: {ok: true}
    name: chat
  - emit: typing
close:
  - emit: [bye]
"""


def test_a_socketio_file_parses_its_actions_and_settings() -> None:
    """emit with ack, expect_event with data, and the namespace setting come out of the file as steps."""
    conversation = load_conversation_text(GOOD_FILE, "chat.yaml")
    assert conversation.protocol == "socketio"
    assert conversation.settings == {"namespace": "/chat"}
    assert [(s.action, s.name) for s in conversation.hold] == [("emit", "chat"), ("emit", "hold-2")]
    assert conversation.hold[0].options == {"ack": {"ok": True}}
    assert conversation.open[0].options == {"data": {"room": "lobby"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hold:\n  - emit: []\n", "chat.yaml: hold step 1: emit takes [EVENT, ARG, ...]"),
        ("open:\n  - emit: [1, 2]\n", "chat.yaml: open step 1: emit takes [EVENT, ARG, ...]"),
        ("close:\n  - emit: {a: 1}\n", "chat.yaml: close step 1: emit takes [EVENT, ARG, ...]"),
        ("hold:\n  - send: x\n  - emit: [connect]\n", "chat.yaml: hold step 2: emit: 'connect' is a reserved"),
        ("hold:\n  - expect_event: [a]\n", "chat.yaml: hold step 1: expect_event takes an event name"),
        ("hold:\n  - emit: [a]\n    data: 1\n", "chat.yaml: hold step 1: unknown key 'data' for emit"),
        ("hold:\n  - expect_event: a\n    ack: 1\n", "chat.yaml: hold step 1: unknown key 'ack' for expect_event"),
        ("hold:\n  - emit: [a, '${nope}']\n", "chat.yaml: hold step 1: unknown variable ${nope}"),
        ("namespace: chat\n", 'chat.yaml: namespace: must be a name starting with "/"'),
        ("path: 3\n", 'chat.yaml: path: must be a name starting with "/"'),
        ("auth: [1]\n", "chat.yaml: auth: must be a mapping"),
        ("auth: {t: '${tok}'}\n", "chat.yaml: auth: unknown variable ${tok}"),
        ("init_payload: {}\n", "chat.yaml: unknown key 'init_payload'"),
    ],
)
def test_a_bad_socketio_step_or_setting_is_one_line_naming_the_place(text: str, message: str) -> None:
    """Bad steps and settings raise one ConversationError line naming the file, the part and the step."""
    with pytest.raises(ConversationError) as error:
        load_conversation_text("protocol: socketio\n" + text, "chat.yaml")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_the_protocol_checks_steps_built_in_python_too() -> None:
    """A conversation built in Python with a bad emit fails when its protocol is made."""
    conversation = Conversation(protocol="socketio", hold=(make_step("emit", [], "bad"),), source="MyUser")
    with pytest.raises(ConversationError, match=r"^MyUser: hold step 1: emit takes"):
        make_protocol(conversation)


# --- connection state recovery (resume: true) ----------------------------------------------------


def _resuming_connection(protocol: SocketIOProtocol, carry: UserCarry, answer: str) -> tuple[SocketIOFraming, str]:
    """A connection of `carry`'s user: its CONNECT frame as sent, after the server's `answer`."""
    carry.session_started()
    framing = protocol.connection(carry)
    run = run_step(framing, protocol.opening()[0], V, [OPEN, answer])
    assert run.result == "matched"
    return framing, run.sent[0]


def test_resume_sends_the_pid_and_last_offset_and_counts_the_recovery() -> None:
    """A reconnect's CONNECT carries the pid and the last event's offset; the same pid back means recovered."""
    protocol = _protocol("protocol: socketio\nresume: true\nstream: {event: tick, seq: n}\nauth: {user: u}\n")
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=True)
    framing, connect = _resuming_connection(protocol, carry, '40{"sid":"s1","pid":"p1"}')
    assert connect == '40{"user":"u"}'  # the first session asks nothing
    feed(framing, ['42["tick",{"n":1},"o-1"]', '42["tick",{"n":2},"o-2"]'])
    carry.session_ended(on_purpose=False)  # an abrupt drop
    _, connect = _resuming_connection(protocol, carry, '40{"sid":"s2","pid":"p1"}')
    assert connect == '40{"pid":"p1","offset":"o-2","user":"u"}'
    assert (counts.resumes_asked, counts.resumes_answered, counts.sessions_resumed) == (1, 1, 1)


def test_a_server_without_recovery_is_asked_nothing_and_resumes_nothing() -> None:
    """No pid from the server: the reconnect sends no pid, and the session counts as not recovered."""
    protocol = _protocol("protocol: socketio\nresume: true\nstream: {event: tick, seq: n}\n")
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=True)
    _resuming_connection(protocol, carry, '40{"sid":"s1"}')
    carry.session_ended(on_purpose=False)
    _, connect = _resuming_connection(protocol, carry, '40{"sid":"s2"}')
    assert connect == "40"
    assert (counts.resumes_asked, counts.resumes_answered, counts.sessions_resumed) == (1, 1, 0)


def test_a_new_pid_means_the_server_did_not_recover_and_forgets_the_old_offset() -> None:
    """An answer with another pid is a new session: not recovered, and its offsets start afresh."""
    protocol = _protocol("protocol: socketio\nresume: true\nstream: {event: tick, seq: n}\n")
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=True)
    framing, _ = _resuming_connection(protocol, carry, '40{"sid":"s1","pid":"p1"}')
    feed(framing, ['42["tick",{"n":1},"o-1"]'])
    carry.session_ended(on_purpose=False)
    _resuming_connection(protocol, carry, '40{"sid":"s2","pid":"p2"}')
    assert carry.protocol_state == {"pid": "p2"}
    assert counts.sessions_resumed == 0
    carry.session_ended(on_purpose=False)
    _, connect = _resuming_connection(protocol, carry, '40{"sid":"s3","pid":"p2"}')
    assert connect == '40{"pid":"p2"}'


def test_a_clean_disconnect_ends_the_session_on_purpose() -> None:
    """After the namespace DISCONNECT, the next connect starts a new session: no pid sent, a new chain."""
    protocol = _protocol("protocol: socketio\nresume: true\nstream: {event: tick, seq: n}\n")
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=True)
    framing, _ = _resuming_connection(protocol, carry, '40{"sid":"s1","pid":"p1"}')
    assert framing.goodbye_ends_session
    carry.session_ended(on_purpose=True)
    _, connect = _resuming_connection(protocol, carry, '40{"sid":"s2","pid":"p2"}')
    assert connect == "40"
    assert (counts.chains, counts.resumes_asked) == (2, 0)


def test_without_resume_the_pid_is_never_sent() -> None:
    """resume: false (the default): a carry's pid is not kept, nothing is recovered."""
    protocol = _protocol("protocol: socketio\nstream: {event: tick, seq: n}\n")
    carry = UserCarry(ContinuityCounts(), resume=False)
    _resuming_connection(protocol, carry, '40{"sid":"s1","pid":"p1"}')
    _, connect = _resuming_connection(protocol, carry, '40{"sid":"s2","pid":"p1"}')
    assert connect == "40"
