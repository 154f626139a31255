"""The codec's server side, with scripted client bytes: what the bundled server reads and answers."""

from __future__ import annotations

import pytest

from scenarios.protocols.mqtt import (
    MQTT_3_1_1,
    MQTT_5,
    PINGRESP_BYTES,
    ClientPacketDecoder,
    Connack,
    Connect,
    Disconnect,
    MqttDecoder,
    Pingreq,
    Pingresp,
    ProtocolError,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Unsubscribe,
    Will,
    encode_connack,
    encode_suback,
    encode_unsuback,
)


@pytest.mark.parametrize(
    "connect",
    [
        Connect("c1"),
        Connect("c2", clean_start=False, keepalive_s=5, username="u", password=b"pw", will=Will("w/t", b"x", 1, True)),
        Connect("c3", level=MQTT_5, session_expiry_s=7, username="u", password=b"pw", will=Will("w", b"", 0)),
    ],
)
def test_a_connect_the_client_encodes_is_read_back_the_same(connect: Connect) -> None:
    """Client CONNECT bytes decode to the same CONNECT, in both versions (password included, never shown)."""
    decoder = ClientPacketDecoder()
    assert decoder.feed(connect.encode()) == [connect]
    assert decoder.level == connect.level


def test_the_packets_after_connect_are_read_in_the_connects_version() -> None:
    """SUBSCRIBE, UNSUBSCRIBE, PUBLISH, PUBACK, PINGREQ, DISCONNECT in one stream, split anywhere, 5.0."""
    stream = (
        Connect("c", level=MQTT_5).encode()
        + Subscribe(1, (("a/+", 1), ("b", 0))).encode(MQTT_5)
        + Publish("a/x", b"{}", 1, packet_id=2).encode(MQTT_5)
        + Puback(3).encode(MQTT_5)
        + bytes.fromhex("a2 06 00 04 00 00 01") + b"b"  # UNSUBSCRIBE b (5.0: empty properties)
        + Pingreq().encode()
        + Disconnect().encode(MQTT_5)
    )  # fmt: skip
    decoder = ClientPacketDecoder()
    packets = []
    for index in range(0, len(stream), 3):
        packets += decoder.feed(stream[index : index + 3])
    assert packets[1:] == [
        Subscribe(1, (("a/+", 1), ("b", 0))),
        Publish("a/x", b"{}", 1, packet_id=2),
        Puback(3),
        Unsubscribe(4, ("b",)),
        Pingreq(),
        Disconnect(0),
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes.fromhex("c0 00"), "PINGREQ before CONNECT"),
        (Connect("c").encode() + Connect("c").encode(), "a second CONNECT"),
        (bytes.fromhex("10 0c 0004 4d515454 03 02 003c 0000"), "unsupported protocol level 3"),
    ],
)
def test_a_client_breaking_the_specification_is_a_short_protocol_error(data: bytes, problem: str) -> None:
    """Packets before CONNECT, a second CONNECT, an unknown level: refused by name."""
    with pytest.raises(ProtocolError, match=f"^{problem}$"):
        ClientPacketDecoder().feed(data)


def test_the_servers_answers_read_back_through_the_clients_decoder() -> None:
    """CONNACK, SUBACK, UNSUBACK and PINGRESP as the server encodes them are what the client decodes, both versions."""
    for level in (MQTT_3_1_1, MQTT_5):
        stream = (
            encode_connack(True, 0, level)
            + encode_suback(1, [1, 0x80], level)
            + encode_unsuback(2, 1, level)
            + PINGRESP_BYTES
        )
        packets = MqttDecoder(level).feed(stream)
        assert packets[0] == Connack(True, 0, level)
        assert isinstance(packets[1], Suback) and packets[1].return_codes == (1, 0x80)
        assert packets[3] == Pingresp()
    assert MqttDecoder().feed(encode_connack(True, 4))[0].refusal == "connection refused: bad user name or password"
