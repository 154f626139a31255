"""MQTT 3.1.1 and 5.0 framing with scripted bytes: spec examples, round trips, split streams, malformed input, names."""

from __future__ import annotations

import re

import pytest

from scenarios.protocols.mqtt import (
    CONNACK_REFUSALS_3,
    MQTT_3_1_1,
    MQTT_5,
    PING_TIMED_OUT,
    Connack,
    Connect,
    Disconnect,
    MqttDecoder,
    MqttSession,
    Pingreq,
    Pingresp,
    ProtocolError,
    Puback,
    Publish,
    QosTwoAck,
    Suback,
    Subscribe,
    Unsuback,
    Will,
    check_topic_filter,
    check_topic_name,
    decode_all,
    decode_varint,
    describe_packets,
    encode_varint,
    reason_name,
    topic_matches,
)

PASSWORD = b"hunter2-pw"
SECRET_PAYLOAD = b"SECRET-PAYLOAD-42"
MQTT_NAME = bytes.fromhex("0004 4d515454")  # the protocol name "MQTT" as a UTF-8 string


def h(text: str) -> bytes:
    """Bytes from spaced hex, as the specification prints them."""
    return bytes.fromhex(text)


# --- variable byte integer -----------------------------------------------------------------------

VARINT_TABLE = [  # MQTT 3.1.1 2.2.3 / 5.0 1.5.5: the edges of each length
    (0, "00"),
    (127, "7f"),
    (128, "80 01"),
    (16_383, "ff 7f"),
    (16_384, "80 80 01"),
    (2_097_151, "ff ff 7f"),
    (2_097_152, "80 80 80 01"),
    (268_435_455, "ff ff ff 7f"),
]


@pytest.mark.parametrize(("value", "encoded"), VARINT_TABLE)
def test_variable_byte_integers_match_the_specification_table(value: int, encoded: str) -> None:
    """Each edge of the spec's table encodes to its bytes and decodes back, with the offset after it."""
    assert encode_varint(value) == h(encoded)
    assert decode_varint(b"\xaa" + h(encoded) + b"\xbb", 1) == (value, 1 + len(h(encoded)))


def test_variable_byte_integers_have_bounds() -> None:
    """Below 0 or above 268,435,455 is refused; a fifth byte is malformed; a cut one is incomplete (None)."""
    for value in (-1, 268_435_456):
        with pytest.raises(ValueError, match="out of range"):
            encode_varint(value)
    with pytest.raises(ProtocolError, match="longer than 4 bytes"):
        decode_varint(h("ff ff ff ff 01"))
    assert decode_varint(h("ff ff")) is None
    assert decode_varint(b"") is None


# --- encoding ------------------------------------------------------------------------------------


def test_a_minimal_3_1_1_connect_is_byte_exact() -> None:
    """Client id, clean session, keepalive 60: the fixed header, `MQTT`, level 4, flags 02, then the id."""
    assert Connect("c1").encode() == h("10 0e") + MQTT_NAME + h("04 02 00 3c 0002 6331")


def test_the_specification_connect_example_flags_and_payload_order() -> None:
    """3.1.2.11's example: user name, password, will QoS 1, will, clean: flags CE, keepalive 10; payload in order."""
    will = Will("w/t", b"bye", qos=1)
    data = Connect("id", keepalive_s=10, username="u", password=PASSWORD, will=will).encode()
    body = MQTT_NAME + h("04 ce 00 0a") + h("0002 6964 0003 772f74 0003 627965 0001 75") + h("000a") + PASSWORD
    assert data == h("10") + encode_varint(len(body)) + body
    assert Connect("id", clean_start=False, will=Will("w", retain=True, qos=2)).encode()[9] == 0x34


def test_a_5_0_connect_carries_the_session_expiry_and_empty_will_properties() -> None:
    """Level 5; properties `05 11 0000000a` (Session Expiry 10 s, as 3.1.2.11's example); will properties 00."""
    data = Connect("id", level=MQTT_5, keepalive_s=10, session_expiry_s=10, will=Will("w", b"x")).encode()
    variable = MQTT_NAME + h("05 06 00 0a") + h("05 11 0000000a")
    assert data[2 : 2 + len(variable)] == variable
    assert data[2 + len(variable) :] == h("0002 6964") + h("00") + h("0001 77 0001 78")
    assert Connect("id", level=MQTT_5).encode().endswith(h("00 3c 00 0002 6964"))
    # 5.0 allows a password without a user name (3.1.2.9).
    assert Connect("", level=MQTT_5, password=b"p").encode()[9] == 0x42


@pytest.mark.parametrize(
    ("connect", "problem"),
    [
        (Connect("c", session_expiry_s=5), "MQTT 5.0 only"),
        (Connect("c", password=PASSWORD), "needs a user name"),
        (Connect("", clean_start=False), "needs a client id"),
        (Connect("c", keepalive_s=65_536), "keepalive_s"),
        (Connect("c", level=3), "protocol level"),
        (Connect("c", will=Will("w/#")), "wildcard"),
        (Connect("c", will=Will("w", qos=3)), "will qos"),
        (Connect("c\x00"), "U+0000"),
        (Connect("c", username="u", password=PASSWORD * 7000), "password is longer"),
    ],
)
def test_a_connect_the_specification_forbids_is_refused_without_the_password(connect: Connect, problem: str) -> None:
    """ValueError naming the problem; the password is not in the message."""
    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        connect.encode()
    assert "hunter2" not in str(error.value)


def test_the_password_is_never_in_a_repr() -> None:
    """Connect's repr shows the user name and hides the password (and payloads)."""
    connect = Connect("c", username="alice", password=PASSWORD, will=Will("w", SECRET_PAYLOAD))
    assert "alice" in repr(connect) and "hunter2" not in repr(connect) and "SECRET" not in repr(connect)
    assert "SECRET" not in repr(Publish("t", SECRET_PAYLOAD, 1, packet_id=3))


def test_subscribe_matches_the_specification_example() -> None:
    """3.8.3's example: id 10, `a/b` QoS 1, `c/d` QoS 2; header 82; 5.0 adds an empty property list."""
    filters = (("a/b", 1), ("c/d", 2))
    assert Subscribe(10, filters).encode() == h("82 0e 000a 0003 612f62 01 0003 632f64 02")
    assert Subscribe(10, filters).encode(MQTT_5) == h("82 0f 000a 00 0003 612f62 01 0003 632f64 02")


@pytest.mark.parametrize(
    ("packet", "problem"),
    [
        (Subscribe(1, ()), "at least one"),
        (Subscribe(0, (("a", 0),)), "packet identifier"),
        (Subscribe(1, (("a/#/b", 0),)), "# must be the last"),
        (Subscribe(1, (("a", 3),)), "qos"),
        (Publish("a/+", b""), "wildcard"),
        (Publish("", b""), "empty"),
        (Publish("a", b"", qos=2, packet_id=1), "qos"),
        (Publish("a", b"", qos=1), "needs a packet identifier"),
        (Publish("a", b"", packet_id=1), "QoS 0"),
        (Puback(1, 0x80), "MQTT 5.0 only"),
        (Disconnect(0x04), "MQTT 5.0 only"),
    ],
)
def test_packets_the_specification_forbids_are_refused(packet: Subscribe | Publish | Puback, problem: str) -> None:
    """Encoders raise ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=re.escape(problem)):
        packet.encode()


def test_publish_puback_pingreq_and_disconnect_bytes() -> None:
    """QoS 0 and 1 PUBLISH (retain, DUP), PUBACK, PINGREQ, DISCONNECT in both versions."""
    assert Publish("a/b", b"hi").encode() == h("30 07 0003 612f62 6869")
    assert Publish("a/b", b"hi", qos=1, retain=True, packet_id=10).encode() == h("33 09 0003 612f62 000a 6869")
    assert Publish("a/b", b"hi", qos=1, packet_id=10, dup=True).encode(MQTT_5) == h("3a 0a 0003 612f62 000a 00 6869")
    assert Puback(10).encode() == Puback(10).encode(MQTT_5) == h("40 02 000a")
    assert Puback(10, 0x10).encode(MQTT_5) == h("40 03 000a 10")
    assert Pingreq().encode() == h("c0 00")
    assert Disconnect().encode() == h("e0 00")
    assert Disconnect().encode(MQTT_5) == h("e0 01 00")


def test_a_large_publish_has_a_multi_byte_remaining_length_and_round_trips() -> None:
    """200 bytes of payload: remaining length 2 bytes; decoded back unchanged, in both versions."""
    for level in (MQTT_3_1_1, MQTT_5):
        packet = Publish("big/one", bytes(range(200)), qos=1, packet_id=65_535)
        data = packet.encode(level)
        assert data[1] & 0x80 and not data[2] & 0x80
        assert decode_all(data, level) == [packet]


# --- decoding ------------------------------------------------------------------------------------


def test_connack_accepted_and_session_present() -> None:
    """20 02 00 00 is accepted without session; 01 00 with one; 5.0 reads properties (Server Keep Alive)."""
    assert decode_all(h("20 02 00 00")) == [Connack(False, 0)]
    (connack,) = decode_all(h("20 02 01 00"))
    assert isinstance(connack, Connack) and connack.accepted and connack.session_present and connack.refusal is None
    (connack,) = decode_all(h("20 0c 00 00 09 13 001e 12 0003 616263"), MQTT_5)
    assert isinstance(connack, Connack) and connack.server_keepalive_s == 30
    assert connack.properties[0x12] == "abc"
    assert decode_all(h("20 02 00 00"), MQTT_5) == [Connack(False, 0, MQTT_5)]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "connection refused: unacceptable protocol version"),
        (2, "connection refused: identifier rejected"),
        (3, "connection refused: server unavailable"),
        (4, "connection refused: bad user name or password"),
        (5, "connection refused: not authorized"),
        (6, "connection refused: return code 6 (reserved)"),
    ],
)
def test_every_3_1_1_refusal_has_its_name(code: int, name: str) -> None:
    """A 3.1.1 CONNACK refusal reads as words."""
    (connack,) = decode_all(bytes((0x20, 2, 0, code)))
    assert isinstance(connack, Connack) and not connack.accepted and connack.refusal == name
    assert len(CONNACK_REFUSALS_3) == 5


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x80, "unspecified error"),
        (0x81, "malformed packet"),
        (0x82, "protocol error"),
        (0x83, "implementation specific error"),
        (0x84, "unsupported protocol version"),
        (0x85, "client identifier not valid"),
        (0x86, "bad user name or password"),
        (0x87, "not authorized"),
        (0x88, "server unavailable"),
        (0x89, "server busy"),
        (0x8A, "banned"),
        (0x8C, "bad authentication method"),
        (0x90, "topic name invalid"),
        (0x95, "packet too large"),
        (0x97, "quota exceeded"),
        (0x99, "payload format invalid"),
        (0x9A, "retain not supported"),
        (0x9B, "qos not supported"),
        (0x9C, "use another server"),
        (0x9D, "server moved"),
        (0x9F, "connection rate exceeded"),
    ],
)
def test_every_5_0_connack_reason_has_its_specification_name(code: int, name: str) -> None:
    """The CONNACK reason codes of 5.0's table 3.1 read by name, properties (a reason string) skipped."""
    (connack,) = decode_all(bytes((0x20, 9, 0, code, 6, 0x1F, 0, 3)) + b"why", MQTT_5)
    assert isinstance(connack, Connack) and connack.refusal == f"connection refused: {name}"
    assert reason_name(code) == name


def test_a_3_1_1_servers_answer_to_a_5_0_connect_reads_in_3_1_1_words() -> None:
    """Codes 1 .. 5 are no 5.0 CONNACK reasons: a 3.1.1-only broker's `01` still reads as the version refusal."""
    (connack,) = decode_all(h("20 02 00 01"), MQTT_5)
    assert isinstance(connack, Connack) and connack.refusal == "connection refused: unacceptable protocol version"


def test_suback_granted_and_failed_in_both_versions() -> None:
    """3.1.1 names 0x80 `failure`; 5.0 names its codes; a reserved code is malformed."""
    (suback,) = decode_all(h("90 05 000a 01 80 02"))
    assert isinstance(suback, Suback) and suback.packet_id == 10
    assert suback.granted_qos == (1, None, 2) and suback.failures == ("failure",)
    (suback,) = decode_all(h("90 0b 0001 05 1f 0002 6e6f 00 97 a2"), MQTT_5)
    assert isinstance(suback, Suback) and suback.granted_qos == (0, None, None)
    assert suback.failures == ("quota exceeded", "wildcard subscriptions not supported")
    with pytest.raises(ProtocolError, match="reserved return code 0x03"):
        decode_all(h("90 03 000a 03"))
    with pytest.raises(ProtocolError, match="reserved return code 0x11"):
        decode_all(h("90 04 000a 00 11"), MQTT_5)
    with pytest.raises(ProtocolError, match="no return codes"):
        decode_all(h("90 02 000a"))


def test_publish_from_the_server_with_5_0_properties_skipped() -> None:
    """Topic, QoS, id, DUP, retain and payload read; expiry, content type and user properties are skipped over."""
    properties = h("02 0000003c 03 0004 74657874 26 0001 6b 0001 76 26 0001 6b 0001 77")
    body = h("0003 612f62 0007") + bytes((len(properties),)) + properties + SECRET_PAYLOAD
    (publish,) = decode_all(bytes((0x3B, len(body))) + body, MQTT_5)
    assert publish == Publish("a/b", SECRET_PAYLOAD, qos=1, retain=True, packet_id=7, dup=True)
    assert isinstance(publish, Publish) and publish.properties[0x26] == (("k", "v"), ("k", "w"))
    (publish,) = decode_all(h("30 05 0001 74 6869"))
    assert publish == Publish("t", b"hi")


def test_5_0_topic_aliases_resolve_per_connection() -> None:
    """A PUBLISH with topic and alias 1 sets it; a later one with an empty topic and alias 1 gets the topic."""
    decoder = MqttDecoder(MQTT_5)
    first, second = decoder.feed(h("30 09 0001 74 03 23 0001 6869") + h("30 08 0000 03 23 0001 6869"))
    assert isinstance(second, Publish) and second.topic == "t" == getattr(first, "topic", None)
    with pytest.raises(ProtocolError, match="unknown topic alias"):
        MqttDecoder(MQTT_5).feed(h("30 08 0000 03 23 0002 6869"))


def test_puback_pingresp_disconnect_unsuback_and_qos2_acks() -> None:
    """The other server packets decode, in 5.0 with optional reason codes and properties."""
    assert decode_all(h("40 02 000a")) == [Puback(10)]
    (puback,) = decode_all(h("40 04 000a 97 00"), MQTT_5)
    assert puback == Puback(10, 0x97) and isinstance(puback, Puback) and puback.failure == "quota exceeded"
    assert decode_all(h("40 03 000a 10"), MQTT_5)[0] == Puback(10, 0x10)
    assert decode_all(h("d0 00")) == [Pingresp()]
    (disconnect,) = decode_all(h("e0 05 8b 03 1f 0000"), MQTT_5)
    assert isinstance(disconnect, Disconnect) and disconnect.reason == "server shutting down"
    assert decode_all(h("e0 00"), MQTT_5) == [Disconnect(0)]
    assert decode_all(h("b0 02 0005")) == [Unsuback(5)]
    assert decode_all(h("b0 05 0005 00 00 11"), MQTT_5) == [Unsuback(5, (0, 0x11))]
    assert decode_all(h("50 02 0001 62 02 0001 70 02 0001")) == [
        QosTwoAck(5, 1),
        QosTwoAck(6, 1),
        QosTwoAck(7, 1),
    ]
    assert describe_packets(decode_all(h("50 02 0001 d0 00"))) == "PUBREC, PINGRESP"


# --- streams -------------------------------------------------------------------------------------

STREAM = (
    h("20 02 00 00")
    + h("90 03 0001 01")
    + Publish("a/b", SECRET_PAYLOAD * 10, qos=1, packet_id=9).encode()
    + h("d0 00")
    + h("40 02 0002")
)


def test_packets_split_at_every_byte_decode_the_same() -> None:
    """Five packets cut into two frames at each possible point, and fed a byte at a time, decode alike."""
    whole = decode_all(STREAM)
    assert describe_packets(whole) == "CONNACK, SUBACK, PUBLISH, PINGRESP, PUBACK"
    for cut in range(len(STREAM) + 1):
        decoder = MqttDecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == whole
        assert decoder.buffered_bytes == 0
    decoder = MqttDecoder()
    assert [packet for index in range(len(STREAM)) for packet in decoder.feed(STREAM[index : index + 1])] == whole


def test_a_packet_cut_inside_its_remaining_length_waits() -> None:
    """A first byte and a partial remaining length are held until the rest comes."""
    data = Publish("t", bytes(300)).encode()
    decoder = MqttDecoder()
    assert decoder.feed(data[:2]) == [] and decoder.buffered_bytes == 2
    assert decoder.feed(data[2:]) == [Publish("t", bytes(300))]
    with pytest.raises(ProtocolError, match="ends inside a packet"):
        decode_all(data[:-1])


@pytest.mark.parametrize(
    ("data", "problem", "level"),
    [
        (h("20 ff ff ff ff 01"), "malformed remaining length: longer than 4 bytes", MQTT_3_1_1),
        (h("20 03 00 00 00"), "malformed CONNACK: 1 unexpected bytes at the end", MQTT_3_1_1),
        (h("20 01 00"), "malformed CONNACK: return code runs past the end", MQTT_3_1_1),
        (h("20 02 02 00"), "reserved acknowledge flags", MQTT_3_1_1),
        (h("20 02 01 05"), "session present with a refusal", MQTT_3_1_1),
        (h("21 02 00 00"), "malformed CONNACK: reserved header flags set", MQTT_3_1_1),
        (h("62 02 0001 60 02 0001"), "malformed PUBREL: reserved header flags set", MQTT_3_1_1),
        (h("36 05 0001 74 0001"), "malformed PUBLISH: QoS 3", MQTT_3_1_1),
        (h("38 03 0001 74"), "DUP set on QoS 0", MQTT_3_1_1),
        (h("32 05 0001 74 0000"), "packet identifier 0", MQTT_3_1_1),
        (h("30 03 0001 2b"), "wildcard in topic name", MQTT_3_1_1),
        (h("30 02 0000"), "empty topic name", MQTT_3_1_1),
        (h("30 04 0009 7478"), "topic name runs past the end", MQTT_3_1_1),
        (h("30 04 0002 c328"), "topic name is not valid UTF-8", MQTT_3_1_1),
        (h("30 04 0002 7400"), "topic name contains U+0000", MQTT_3_1_1),
        (h("10 00"), "CONNECT sent by the server", MQTT_3_1_1),
        (h("c0 00"), "PINGREQ sent by the server", MQTT_3_1_1),
        (h("e0 00"), "DISCONNECT sent by the server (MQTT 5.0 only)", MQTT_3_1_1),
        (h("00 00"), "reserved packet type 0", MQTT_3_1_1),
        (h("d0 01 00"), "malformed PINGRESP", MQTT_3_1_1),
        (h("30 06 0001 74 09 01 00"), "property length runs past the end", MQTT_5),
        (h("30 06 0001 74 02 05 00"), "unknown property 0x05", MQTT_5),
        (h("30 08 0001 74 04 01 00 01 00"), "payload format indicator appears twice", MQTT_5),
        (h("30 07 0001 74 02 13 0001"), "server keep alive runs past the property length", MQTT_5),
        (h("30 06 0001 74 02 23 00"), "topic alias runs past", MQTT_5),
    ],
)
def test_malformed_input_is_a_short_protocol_error(data: bytes, problem: str, level: int) -> None:
    """Each break of the specification raises ProtocolError with a message naming it; the stream stays failed."""
    decoder = MqttDecoder(level)
    with pytest.raises(ProtocolError, match=re.escape(problem)):
        decoder.feed(data)
    with pytest.raises(ProtocolError, match="."):
        decoder.feed(h("d0 00"))


def test_errors_never_quote_the_payload_and_big_packets_are_refused_early() -> None:
    """A malformed PUBLISH's error has no payload bytes; a packet over the limit fails on its header alone."""
    body = h("0003 612f62 09") + SECRET_PAYLOAD  # 5.0 property length 9 runs into the payload: garbage properties
    with pytest.raises(ProtocolError) as error:
        decode_all(bytes((0x30, len(body))) + body, MQTT_5)
    assert "SECRET" not in str(error.value) and len(str(error.value)) < 80
    decoder = MqttDecoder(max_packet_bytes=1000)
    with pytest.raises(ProtocolError, match="exceeds the 1000-byte limit"):
        decoder.feed(h("30 e8 07"))  # 1000 bytes announced: 1003 with the header


# --- topics --------------------------------------------------------------------------------------

MATCHES = [  # MQTT 3.1.1 4.7.1.2, 4.7.1.3, 4.7.2 (and 5.0 4.7) examples, then edges
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+", "finance", True),
    ("sport/+/player1", "sport/tennis/player1", True),
    ("+/tennis/#", "sport/tennis/player1/ranking", True),
    ("sport", "Sport", False),
    ("sport/", "sport", False),
    ("a/b", "a/b", True),
    ("a/b", "a/b/c", False),
    ("#", "$SYS/monitor/Clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("$SYS", "$SYS", True),
]


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), MATCHES)
def test_topic_filters_match_as_the_specification_says(topic_filter: str, topic: str, matches: bool) -> None:
    """`+` is one level (empty too), `#` the parent and below, `$` topics escape leading wildcards."""
    check_topic_filter(topic_filter)
    check_topic_name(topic)
    assert topic_matches(topic_filter, topic) is matches


@pytest.mark.parametrize("topic_filter", ["sport/tennis#", "sport/tennis/#/ranking", "sport+", "+a", "", "##"])
def test_invalid_topic_filters_are_refused(topic_filter: str) -> None:
    """The spec's invalid filters (4.7.1.2, 4.7.1.3) and an empty one raise ValueError."""
    with pytest.raises(ValueError, match="topic filter"):
        check_topic_filter(topic_filter)


# --- the session ---------------------------------------------------------------------------------

CONNACK_OK = h("20 02 00 00")


def _connected(keepalive_s: int = 10, level: int = MQTT_3_1_1) -> MqttSession:
    """A session past CONNACK at t=0."""
    session = MqttSession(Connect("c", level=level, keepalive_s=keepalive_s))
    assert session.open(0.0) == Connect("c", level=level, keepalive_s=keepalive_s).encode()
    assert session.receive(CONNACK_OK, 0.0) == ((), (Connack(False, 0, level),))
    assert session.connected and session.failure(0.0) is None
    return session


def test_the_session_acknowledges_qos1_publishes_and_tracks_its_own() -> None:
    """A QoS 1 PUBLISH from the server is answered with its PUBACK once complete; ours wait for theirs."""
    session = _connected()
    subscribe_id, data = session.subscribe([("a/#", 1)], 1.0)
    assert subscribe_id == 1 and data == Subscribe(1, (("a/#", 1),)).encode()
    assert session.awaiting_suback == {1: (("a/#", 1),)}
    publish = Publish("a/b", SECRET_PAYLOAD, qos=1, packet_id=77).encode()
    assert session.receive(h("90 03 0001 01") + publish[:5], 2.0) == ((), (Suback(1, (1,)),))
    assert session.awaiting_suback == {}
    replies, packets = session.receive(publish[5:], 2.0)
    assert replies == (h("40 02 004d"),) and packets == (Publish("a/b", SECRET_PAYLOAD, 1, packet_id=77),)
    assert session.publish("a/b", b"x", 3.0) == (None, Publish("a/b", b"x").encode())
    packet_id, data = session.publish("a/b", b"x", 3.0, qos=1, retain=True)
    assert packet_id == 2 and data == Publish("a/b", b"x", 1, True, 2).encode()
    assert session.awaiting_puback == {2: "a/b"}
    session.receive(h("40 02 0002"), 4.0)
    assert session.awaiting_puback == {}
    assert session.close(5.0) == h("e0 00") and not session.connected


def test_packet_ids_wrap_and_skip_those_in_use() -> None:
    """After 65535 comes 1, and an id still awaiting its PUBACK is skipped."""
    session = _connected()
    session._next_packet_id = 65_535
    assert session.publish("t", b"", 0.0, qos=1)[0] == 65_535
    assert session.subscribe([("t", 0)], 0.0)[0] == 1
    session._next_packet_id = 65_535
    assert session.publish("t", b"", 0.0, qos=1)[0] == 2


def test_a_pingreq_goes_out_once_the_keepalive_passed_and_a_late_pingresp_fails_the_session() -> None:
    """Keepalive 10 s counted from the last send; no PINGRESP 10 s after the PINGREQ: the session fails."""
    session = _connected(keepalive_s=10)
    # t=0: CONNECT sent; t=6: a PUBLISH resets the keepalive.
    session.publish("t", b"", 6.0)
    assert session.due(15.9) == () and session.next_check_s() == 16.0
    assert session.due(16.0) == (h("c0 00"),)
    assert session.due(17.0) == ()  # one PINGREQ outstanding at a time
    assert session.next_check_s() == 26.0
    session.receive(h("d0 00"), 20.0)  # answered after 4 s
    assert session.failure(30.0) is None and session.ping_sent_s is None
    assert session.due(26.0) == (h("c0 00"),)
    assert session.failure(36.0) is None
    assert session.failure(36.1) == PING_TIMED_OUT == "no PINGRESP within the keepalive"
    assert not session.connected and session.due(50.0) == ()


def test_keepalive_zero_never_pings_and_the_5_0_server_keep_alive_replaces_it() -> None:
    """Keepalive 0 turns pings off; a 5.0 CONNACK's Server Keep Alive sets the interval used."""
    session = _connected(keepalive_s=0)
    assert session.due(1e6) == () and session.next_check_s() is None and session.failure(1e6) is None
    session = MqttSession(Connect("c", level=MQTT_5, keepalive_s=60))
    session.open(0.0)
    session.receive(h("20 06 00 00 03 13 0005"), 0.0)
    assert session.keepalive_s == 5 and session.due(5.0) == (h("c0 00"),)
    assert session.close(6.0) == h("e0 01 00")


@pytest.mark.parametrize(
    ("frames", "level", "failure"),
    [
        ([h("20 02 00 05")], MQTT_3_1_1, "connection refused: not authorized"),
        ([h("20 02 00 04")], MQTT_3_1_1, "connection refused: bad user name or password"),
        ([h("20 03 00 97 00")], MQTT_5, "connection refused: quota exceeded"),
        ([h("d0 00")], MQTT_3_1_1, "protocol error: PINGRESP before CONNACK"),
        ([CONNACK_OK, CONNACK_OK], MQTT_3_1_1, "protocol error: a second CONNACK"),
        ([CONNACK_OK, h("20 02 00")], MQTT_3_1_1, None),
        ([CONNACK_OK + h("20 03 00 00 00")], MQTT_3_1_1, "protocol error: malformed CONNACK: 1 unexpected bytes"),
        ([CONNACK_OK, h("34 05 0001 74 0001")], MQTT_3_1_1, "protocol error: QoS 2 PUBLISH on a QoS 0/1 session"),
        ([CONNACK_OK, h("e0 01 8b")], MQTT_5, "server disconnected: server shutting down"),
        ([CONNACK_OK, h("e0 00")], MQTT_5, "server disconnected: normal disconnection"),
    ],
)
def test_what_fails_a_session_is_named(frames: list[bytes], level: int, failure: str | None) -> None:
    """Refusals, protocol errors and a server DISCONNECT set a short failure reason; later frames are ignored."""
    session = MqttSession(Connect("c", level=level, username="u", password=PASSWORD))
    session.open(0.0)
    for frame in frames:
        session.receive(frame, 1.0)
    reason = session.failure(1.0)
    assert reason is not None and reason.startswith(failure) if failure else reason is None
    assert "hunter2" not in (reason or "")
    if failure:
        assert not session.connected and session.receive(h("d0 00"), 2.0) == ((), ())


def test_a_refusal_shows_its_connack_and_drops_what_follows() -> None:
    """Packets after the failing one in the same frame are not returned or answered."""
    session = MqttSession(Connect("c"))
    session.open(0.0)
    replies, packets = session.receive(h("20 02 00 05") + Publish("t", b"", 1, packet_id=1).encode(), 0.0)
    assert replies == () and packets == (Connack(False, 5),)
