"""MQTT as a conversation's protocol, with scripted broker bytes: steps to packets, packets to step results."""

from __future__ import annotations

import pytest

from scenarios.continuity import ContinuityCounts, UserCarry
from scenarios.conversation import ConversationError, Variables, make_step
from scenarios.protocols import load_conversation_text, make_protocol
from scenarios.protocols.mqtt import (
    MQTT_3_1_1,
    MQTT_5,
    Connack,
    Connect,
    Pingreq,
    Puback,
    Publish,
    decode_all,
)
from scenarios.protocols.mqtt_conversation import CONNECT, SESSION_ROW, MqttFraming, MqttProtocol

TOKEN = "mqtt-s3cret-token"
VARIABLES = Variables(user=7, cycle=2, token=TOKEN)


class FakeClock:
    """An injected clock: seconds, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _protocol(text: str = "", auth_in_payload: bool = False) -> MqttProtocol:
    conversation = load_conversation_text("protocol: mqtt\n" + text, "m.yaml")
    protocol = make_protocol(conversation, auth_in_payload)
    assert isinstance(protocol, MqttProtocol)
    return protocol


def _connected(text: str = "", clock: FakeClock | None = None) -> MqttFraming:
    framing = MqttFraming(_protocol(text), clock or FakeClock())
    step = make_step(CONNECT, None, SESSION_ROW)
    framing.outgoing(step, VARIABLES)
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(bytes.fromhex("20 02 00 00"))
    assert [expectation.check(m) for m in messages] == [True]
    return framing


def _connect_of(framing: MqttFraming) -> Connect:
    assert framing.session is not None
    return framing.session.connect


def test_the_session_step_sends_connect_with_the_files_settings_and_the_token_as_password() -> None:
    """Default client_id flap-${worker}-${user}; username substituted; the token is the password (auth in payload)."""
    protocol = _protocol("username: dev-${user}\nkeepalive_s: 15\nclean_start: false\n", auth_in_payload=True)
    connect = protocol.connect_packet(VARIABLES)
    assert (connect.client_id, connect.username, connect.password) == ("flap-0-7", "dev-7", TOKEN.encode())
    assert (connect.keepalive_s, connect.clean_start, connect.level, connect.session_expiry_s) == (15, False, 4, None)
    assert TOKEN not in repr(connect)
    assert _protocol().connect_packet(VARIABLES).password is None
    v5 = _protocol('version: 5\nsession_expiry_s: 2.5\nwill: {topic: "gone/${user}", payload: {bye: 1}, qos: 1}\n')
    connect5 = v5.connect_packet(VARIABLES)
    assert (connect5.level, connect5.session_expiry_s) == (MQTT_5, 3)
    assert connect5.will is not None and (connect5.will.topic, connect5.will.payload) == ("gone/7", b'{"bye":1}')
    assert _protocol("version: 5\n").connect_packet(VARIABLES).session_expiry_s == 5


def test_a_3_1_1_password_gets_an_empty_user_name_when_the_file_has_none() -> None:
    """MQTT 3.1.1 sends a password only after a user name (3.1.2.9)."""
    connect = _protocol(auth_in_payload=True).connect_packet(VARIABLES)
    assert (connect.username, connect.level) == ("", MQTT_3_1_1)
    connect.encode()


def test_the_subprotocol_is_mqtt_and_the_open_row_is_session() -> None:
    """Subprotocol mqtt offered once; the opening step is the `session` row."""
    protocol = _protocol("subprotocols: [mqtt]\n")
    assert protocol.subprotocols == ("mqtt",)
    assert [step.name for step in protocol.opening()] == ["session"]


@pytest.mark.parametrize(
    ("connack", "reason"),
    [
        ("20 02 00 04", "connection refused: bad user name or password"),
        ("20 02 00 05", "connection refused: not authorized"),
    ],
)
def test_a_refused_connack_fails_the_session_step_by_name(connack: str, reason: str) -> None:
    """The refusal's name, never the password."""
    framing = MqttFraming(_protocol(auth_in_payload=True), FakeClock())
    step = make_step(CONNECT, None, SESSION_ROW)
    (connect,) = framing.outgoing(step, VARIABLES)
    assert isinstance(connect, bytes) and TOKEN.encode() in connect
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(bytes.fromhex(connack))
    results = [expectation.check(m) for m in messages]
    assert results[0] == reason
    assert TOKEN not in str(results)


def test_a_5_0_refusal_is_named_by_its_reason_code() -> None:
    """MQTT 5.0 CONNACK reason 0x87: `connection refused: not authorized`."""
    framing = MqttFraming(_protocol("version: 5\n"), FakeClock())
    step = make_step(CONNECT, None, SESSION_ROW)
    framing.outgoing(step, VARIABLES)
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(bytes.fromhex("20 03 00 87 00"))
    assert expectation.check(messages[0]) == "connection refused: not authorized"


def test_subscribe_waits_for_its_suback_and_a_failure_code_is_named() -> None:
    """SUBACK 0x80 in 3.1.1 fails the step `subscribe failed: failure`; a granted one matches."""
    framing = _connected()
    step = make_step("subscribe", "room/${user}", "sub", options={"qos": 1})
    (data,) = framing.outgoing(step, VARIABLES)
    assert isinstance(data, bytes)
    (subscribe,) = decode_all_client(data)
    assert subscribe == ("room/7", 1)
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(bytes.fromhex("90 03 00 01 80"))
    assert expectation.check(messages[0]) == "subscribe failed: failure"
    framing.outgoing(step, VARIABLES)
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(bytes.fromhex("90 03 00 01 01") + bytes.fromhex("90 03 00 02 01"))
    assert [expectation.check(m) for m in messages] == [False, True]  # packet id 1 is the old one


def decode_all_client(data: bytes) -> list[tuple[str, int]]:
    """The topic filters of a SUBSCRIBE (the server side's reading, enough for these tests)."""
    body = data[2:]
    filters = []
    offset = 2  # packet id
    while offset < len(body):
        length = int.from_bytes(body[offset : offset + 2], "big")
        topic = body[offset + 2 : offset + 2 + length].decode()
        filters.append((topic, body[offset + 2 + length]))
        offset += 3 + length
    return filters


def test_a_qos0_publish_only_sends_and_a_qos1_one_waits_for_its_puback() -> None:
    """QoS 0: no expectation (no row unless it fails); QoS 1: the PUBACK of its packet id; JSON payloads compact."""
    framing = _connected()
    qos0 = make_step("publish", "t/${user}", "pub0", options={"payload": {"n": "${cycle}"}})
    (data,) = framing.outgoing(qos0, VARIABLES)
    assert isinstance(data, bytes)
    assert decode_all(bytes((0x30,)) + data[1:]) == [Publish("t/7", b'{"n":"2"}')]
    assert framing.expectation(qos0, VARIABLES) is None
    qos1 = make_step("publish", "t", "pub1", options={"payload": "hi", "qos": 1})
    framing.outgoing(qos1, VARIABLES)
    expectation = framing.expectation(qos1, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(Puback(1).encode())
    assert expectation.check(messages[0]) is True


def test_expect_publish_matches_wildcards_and_payload_subsets_and_acknowledges_qos1() -> None:
    """`room/+` with {n: 1}: another payload is a near miss, the next PUBLISH matches; QoS 1 is acknowledged."""
    framing = _connected()
    step = make_step("expect_publish", "room/+", "got", options={"payload": {"n": 1}})
    assert framing.outgoing(step, VARIABLES) == ()
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    wrong = Publish("room/a", b'{"n":2}').encode()
    other_topic = Publish("elsewhere", b'{"n":1}').encode()
    right = Publish("room/b", b'{"n":1,"x":true}', qos=1, packet_id=9).encode()
    replies, messages = framing.receive_binary(wrong + other_topic + right)
    assert replies == (Puback(9).encode(),)
    assert [expectation.check(m) for m in messages] == [False, False, True]
    assert expectation.timeout_reason() == "expect_publish timed out: no payload matched"
    text = make_step("expect_publish", "#", "t", options={"payload": "plain"})
    expectation = framing.expectation(text, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(Publish("a", b"plain").encode())
    assert expectation.check(messages[0]) is True


def test_the_keepalive_pings_when_due_and_a_missing_pingresp_ends_the_session() -> None:
    """keepalive 10 s: PINGREQ at 10 s; a PINGRESP keeps it up; none within 10 more seconds: the session ended."""
    clock = FakeClock()
    framing = _connected("keepalive_s: 10\n", clock)
    wake = framing.next_tick_s()
    assert wake is not None and wake >= clock.now + 10
    clock.now = wake
    assert framing.tick(clock.now) == (Pingreq().encode(),)
    framing.receive_binary(bytes.fromhex("d0 00"))  # PINGRESP
    assert framing.ended is None
    clock.now += 10.01
    assert framing.tick(clock.now) == (Pingreq().encode(),)
    wake = framing.next_tick_s()
    assert wake is not None
    clock.now = wake
    assert framing.tick(clock.now) == ()
    assert framing.ended == "no PINGRESP within the keepalive"
    assert framing.next_tick_s() is None


def test_a_clean_goodbye_is_disconnect_and_a_failed_session_sends_none() -> None:
    """DISCONNECT (E0 00) when connected; nothing before CONNACK or after a failure."""
    assert _connected().goodbye() == (bytes.fromhex("e0 00"),)
    framing = MqttFraming(_protocol(), FakeClock())
    assert framing.goodbye() == ()
    framing = _connected()
    framing.receive_binary(bytes.fromhex("20 02 00 00"))  # a second CONNACK: a protocol error
    assert framing.ended == "protocol error: a second CONNACK"
    assert framing.goodbye() == ()


def test_a_failure_while_a_step_waits_fails_the_step_with_its_reason() -> None:
    """Malformed bytes during a subscribe: the step fails with the protocol error, never the bytes."""
    framing = _connected()
    step = make_step("subscribe", "a", "sub")
    framing.outgoing(step, VARIABLES)
    expectation = framing.expectation(step, VARIABLES)
    assert expectation is not None
    _, messages = framing.receive_binary(bytes.fromhex("00 00"))
    assert expectation.check(messages[-1]) == "protocol error: reserved packet type 0"
    _, messages = _connected().receive("text")
    assert messages[0].text == "protocol error: a text frame"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("colour: red\n", "m.yaml: unknown key 'colour' (allowed: clean_start, client_id, close,"),
        ("version: 4\n", "m.yaml: version: must be 3.1.1 or 5"),
        ("keepalive_s: 1.5\n", "m.yaml: keepalive_s: must be whole seconds, 0 .. 65535 (0: no keepalive)"),
        ("session_expiry_s: 10\n", "m.yaml: session_expiry_s: MQTT 5.0 only (version: 5)"),
        ("clean_start: maybe\n", "m.yaml: clean_start: must be true or false"),
        ("will: {topic: a/#}\n", "m.yaml: will: topic name contains a wildcard (+ or #)"),
        (
            "will: {topic: a, colour: red}\n",
            "m.yaml: will: unknown key 'colour' (allowed: payload, qos, retain, topic)",
        ),
        ("client_id: ${nobody}\n", "m.yaml: client_id: unknown variable ${nobody}"),
        ("open:\n  - publish: a/+\n", "m.yaml: open step 1: publish: topic name contains a wildcard (+ or #)"),
        (
            "open:\n  - subscribe: a/b#\n",
            "m.yaml: open step 1: subscribe: topic filter: # must be the last level, alone",
        ),
        ("open:\n  - publish: a\n    qos: 2\n", "m.yaml: open step 1: qos: must be 0 or 1"),
        ("open:\n  - send: hi\n", "m.yaml: open step 1: no action; use one of subscribe, publish, expect_publish"),
        ("open:\n  - subscribe: a\n    payload: x\n", "m.yaml: open step 1: unknown key 'payload' for subscribe"),
    ],
)
def test_a_bad_mqtt_file_is_one_line(text: str, error: str) -> None:
    """Unknown keys, bad versions, topics and qos: one line naming the file (and part and step)."""
    with pytest.raises(ConversationError) as raised:
        _protocol(text)
    assert str(raised.value).startswith(error)
    assert "\n" not in str(raised.value)


def test_connack_names_come_from_the_codec() -> None:
    """The refusal text is the codec's (one table of names)."""
    assert Connack(False, 4).refusal == "connection refused: bad user name or password"


def _reconnect(protocol: MqttProtocol, carry: UserCarry, connack_hex: str) -> None:
    """One connection of `carry`'s user: CONNECT, then the broker's CONNACK."""
    carry.session_started()
    framing = protocol.connection(carry)
    framing.outgoing(make_step(CONNECT, None, SESSION_ROW), VARIABLES)
    framing.receive_binary(bytes.fromhex(connack_hex))


def test_without_a_clean_start_reconnects_resume_and_connack_says_whether_the_broker_kept_the_session() -> None:
    """clean_start: false: every reconnect resumes; CONNACK's session-present flag is the broker's answer."""
    protocol = _protocol("client_id: flap-${user}\nclean_start: false\nstream: {topic: flap/+, seq: seq}\n")
    assert protocol.resumes
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=protocol.resumes)
    _reconnect(protocol, carry, "20 02 00 00")  # the first session: nothing to resume
    carry.session_ended(on_purpose=False)
    _reconnect(protocol, carry, "20 02 01 00")  # session present
    carry.session_ended(on_purpose=False)
    _reconnect(protocol, carry, "20 02 00 00")  # the broker lost it
    assert (counts.chains, counts.resumes_asked, counts.resumes_answered, counts.sessions_resumed) == (1, 2, 2, 1)


def test_a_clean_start_is_a_new_session_unless_the_file_asks_to_judge_reconnects_as_one() -> None:
    """clean_start: true starts every session afresh; with resume: true reconnects still form one chain."""
    assert not _protocol("clean_start: true\n").resumes
    assert _protocol("clean_start: true\nresume: true\n").resumes


@pytest.mark.parametrize(
    ("client_id", "refused"),
    [(None, False), ("flap-${worker}-${user}", False), ("dev-${user}", True), ("fixed", False), ("", False)],
)
def test_a_client_id_of_user_alone_is_refused_across_workers(client_id: str | None, refused: bool) -> None:
    """Two workers' user 3 would share `dev-${user}`: refused; the default, a fixed or an empty id are not."""
    settings = {} if client_id is None else {"client_id": client_id}
    if not refused:
        MqttProtocol.check_across_workers(settings)
        return
    with pytest.raises(ConversationError, match=r"^client_id: names \$\{user\} without \$\{worker\}"):
        MqttProtocol.check_across_workers(settings)
