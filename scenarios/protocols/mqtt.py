"""MQTT 3.1.1 and 5.0, client side, sans-I/O: packets to bytes, a stream of bytes to packets, one session's state.

Written from the OASIS specifications (MQTT Version 3.1.1, 2014; MQTT Version 5.0, 2019).
Over WebSocket (MQTT 3.1.1 section 6, 5.0 section 6) the subprotocol is `mqtt` and every
frame is binary; a frame may carry part of a packet or several packets, so `MqttDecoder`
buffers. Nothing here touches a socket or a clock: `MqttSession` takes the time as numbers
and answers what to send now and whether the session failed; an I/O layer moves the bytes.

Errors: bad arguments to an encoder raise ValueError; bytes from the server that break the
specification raise ProtocolError, whose message is short and never quotes a payload. The
password never appears in a repr or a message.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias

SUBPROTOCOL = "mqtt"  # the WebSocket subprotocol of both versions
MQTT_3_1_1 = 4  # the protocol level byte of CONNECT
MQTT_5 = 5
LEVELS = (MQTT_3_1_1, MQTT_5)

# Control packet types (the high nibble of the first byte).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15
PACKET_NAMES = {
    CONNECT: "CONNECT",
    CONNACK: "CONNACK",
    PUBLISH: "PUBLISH",
    PUBACK: "PUBACK",
    PUBREC: "PUBREC",
    PUBREL: "PUBREL",
    PUBCOMP: "PUBCOMP",
    SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT",
    AUTH: "AUTH",
}

VARINT_MAX = 268_435_455  # the largest variable byte integer (four bytes)
PACKET_ID_MAX = 65_535
TWO_BYTE_MAX = 65_535
FOUR_BYTE_MAX = 0xFFFF_FFFF
DEFAULT_MAX_PACKET_BYTES = 16 * 1024 * 1024  # a load-test client's memory bound, well under the spec's 256 MiB

# MQTT 3.1.1 CONNACK return codes (3.2.2.3), as the refusal a failure names.
CONNACK_REFUSALS_3 = {
    1: "connection refused: unacceptable protocol version",
    2: "connection refused: identifier rejected",
    3: "connection refused: server unavailable",
    4: "connection refused: bad user name or password",
    5: "connection refused: not authorized",
}
SUBACK_FAILURE_3 = 0x80  # 3.1.1's one SUBACK failure code

# MQTT 5.0 reason codes (2.4) by their specification names; 0x00-0x02 and 0x04 depend on the packet.
REASON_NAMES_5 = {
    0x10: "no matching subscribers",
    0x11: "no subscription existed",
    0x18: "continue authentication",
    0x19: "re-authenticate",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "qos not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}

# MQTT 5.0 properties (2.2.2.2): identifier -> (name, value type).
BYTE, TWO, FOUR, VARINT, UTF8, BINARY, PAIR = "byte", "two", "four", "varint", "utf8", "binary", "pair"
PROPERTIES_5: Mapping[int, tuple[str, str]] = {
    0x01: ("payload format indicator", BYTE),
    0x02: ("message expiry interval", FOUR),
    0x03: ("content type", UTF8),
    0x08: ("response topic", UTF8),
    0x09: ("correlation data", BINARY),
    0x0B: ("subscription identifier", VARINT),
    0x11: ("session expiry interval", FOUR),
    0x12: ("assigned client identifier", UTF8),
    0x13: ("server keep alive", TWO),
    0x15: ("authentication method", UTF8),
    0x16: ("authentication data", BINARY),
    0x17: ("request problem information", BYTE),
    0x18: ("will delay interval", FOUR),
    0x19: ("request response information", BYTE),
    0x1A: ("response information", UTF8),
    0x1C: ("server reference", UTF8),
    0x1F: ("reason string", UTF8),
    0x21: ("receive maximum", TWO),
    0x22: ("topic alias maximum", TWO),
    0x23: ("topic alias", TWO),
    0x24: ("maximum qos", BYTE),
    0x25: ("retain available", BYTE),
    0x26: ("user property", PAIR),
    0x27: ("maximum packet size", FOUR),
    0x28: ("wildcard subscription available", BYTE),
    0x29: ("subscription identifier available", BYTE),
    0x2A: ("shared subscription available", BYTE),
}
PROPERTY_SESSION_EXPIRY = 0x11
PROPERTY_SERVER_KEEP_ALIVE = 0x13
PROPERTY_ASSIGNED_CLIENT_ID = 0x12
PROPERTY_TOPIC_ALIAS = 0x23
REPEATABLE_PROPERTIES = frozenset((0x0B, 0x26))  # the only ones that may appear more than once


class ProtocolError(Exception):
    """Bytes from the server that break the MQTT specification; the message is short and quotes no payload."""


def reason_name(code: int) -> str:
    """An MQTT 5.0 reason code by its specification name (`quota exceeded`), or `reason code 0xNN`."""
    return REASON_NAMES_5.get(code, f"reason code 0x{code:02x}")


def connack_refusal(code: int, level: int) -> str | None:
    """None for an accepted connection, else `connection refused: <name>` for the CONNACK's code."""
    if code == 0:
        return None
    if level == MQTT_3_1_1 or code in CONNACK_REFUSALS_3:
        # 1 .. 5 are no 5.0 CONNACK reasons: a 3.1.1-only server answers a 5.0 CONNECT in its own codes.
        return CONNACK_REFUSALS_3.get(code, f"connection refused: return code {code} (reserved)")
    return f"connection refused: {reason_name(code)}"


def suback_failure(code: int, level: int) -> str | None:
    """None for a granted QoS (0, 1, 2), else the failure's name (`failure` in 3.1.1, the 5.0 reason)."""
    if code in (0, 1, 2):
        return None
    if level == MQTT_3_1_1:
        return "failure"
    return reason_name(code)


def disconnect_reason(code: int) -> str:
    """An MQTT 5.0 DISCONNECT reason code by name."""
    if code == 0x00:
        return "normal disconnection"
    if code == 0x04:
        return "disconnect with will message"
    return reason_name(code)


# --- primitives ----------------------------------------------------------------------------------


_ONE_BYTE = tuple(bytes((value,)) for value in range(256))  # each byte value as a bytes object of its own


def encode_varint(value: int) -> bytes:
    """A variable byte integer (1.5.5 / 2.2.3): 7 bits a byte, low first, 0 .. 268,435,455."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if not 0 <= value <= VARINT_MAX:
        raise ValueError(f"variable byte integer out of range: {value} (0 .. {VARINT_MAX})")
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        if value:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def decode_varint(data: bytes | bytearray, offset: int = 0, what: str = "remaining length") -> tuple[int, int] | None:
    """(value, offset after it) of the variable byte integer at `offset`; None when the bytes end inside it.

    ProtocolError when it runs past four bytes.
    """
    value = 0
    for index in range(4):
        if offset + index >= len(data):
            return None
        byte = data[offset + index]
        value += (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, offset + index + 1
    raise ProtocolError(f"malformed {what}: longer than 4 bytes")


def _utf8(text: str, what: str) -> bytes:
    """A UTF-8 encoded string (1.5.3): two-byte length, no U+0000."""
    if "\x00" in text:
        raise ValueError(f"{what} contains U+0000")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid UTF-8 (a lone surrogate)") from None
    if len(raw) > TWO_BYTE_MAX:
        raise ValueError(f"{what} is longer than {TWO_BYTE_MAX} bytes")
    return struct.pack("!H", len(raw)) + raw


def _binary(data: bytes, what: str) -> bytes:
    """Binary data (1.5.6): two-byte length, then the bytes."""
    if len(data) > TWO_BYTE_MAX:
        raise ValueError(f"{what} is longer than {TWO_BYTE_MAX} bytes")
    return struct.pack("!H", len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    """Fixed header (type and flags, remaining length) and body."""
    length = len(body)
    if length < 0x80:  # most packets: a one-byte remaining length
        return bytes((first_byte, length)) + body
    return _ONE_BYTE[first_byte] + encode_varint(length) + body


def _check_packet_id(packet_id: int) -> None:
    if not 1 <= packet_id <= PACKET_ID_MAX:
        raise ValueError(f"packet identifier out of range: {packet_id} (1 .. {PACKET_ID_MAX})")


def _check_qos(qos: int, what: str, highest: int = 2) -> None:
    if qos not in range(highest + 1):
        raise ValueError(f"{what} must be 0 .. {highest}, not {qos}")


def _check_level(level: int) -> None:
    if level not in LEVELS:
        raise ValueError(f"protocol level must be 4 (MQTT 3.1.1) or 5 (MQTT 5.0), not {level}")


# --- topics --------------------------------------------------------------------------------------


def check_topic_name(topic: str) -> None:
    """ValueError unless `topic` can be published to: not empty, no wildcards (4.7.3)."""
    _topic_name_bytes(topic)


def _topic_name_bytes(topic: str) -> bytes:
    """The topic name as the packet carries it (1.5.3); ValueError as `check_topic_name` says."""
    if not topic:
        raise ValueError("topic name is empty")
    if "+" in topic or "#" in topic:
        raise ValueError("topic name contains a wildcard (+ or #)")
    return _utf8(topic, "topic name")


def check_topic_filter(topic_filter: str) -> None:
    """ValueError unless `topic_filter` is valid (4.7.1): `+` fills a whole level, `#` is last and alone."""
    _topic_filter_bytes(topic_filter)


def _topic_filter_bytes(topic_filter: str) -> bytes:
    """The topic filter as the packet carries it (1.5.3); ValueError as `check_topic_filter` says."""
    if not topic_filter:
        raise ValueError("topic filter is empty")
    if "+" in topic_filter or "#" in topic_filter:
        levels = topic_filter.split("/")
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != len(levels) - 1):
                raise ValueError("topic filter: # must be the last level, alone")
            if "+" in level and level != "+":
                raise ValueError("topic filter: + must fill a whole level")
    return _utf8(topic_filter, "topic filter")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether a PUBLISH on `topic` matches the subscription `topic_filter` (4.7).

    `+` matches one level (an empty one too), `#` the parent level and every level below;
    topics starting with `$` are not matched by a filter starting with a wildcard (4.7.2).
    """
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


# --- client packets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Will:
    """The will message of a CONNECT: published by the server if the client goes away uncleanly."""

    topic: str
    payload: bytes = field(default=b"", repr=False)
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True)
class Connect:
    """CONNECT (3.1): the first packet; `level` 4 is MQTT 3.1.1, 5 is MQTT 5.0."""

    client_id: str
    level: int = MQTT_3_1_1
    clean_start: bool = True  # 3.1.1's Clean Session, 5.0's Clean Start
    keepalive_s: int = 60  # 0 turns keepalive off
    username: str | None = None
    password: bytes | None = field(default=None, repr=False)  # a secret: never shown
    will: Will | None = None
    session_expiry_s: int | None = None  # MQTT 5.0 Session Expiry Interval; None leaves it out (0)

    def encode(self) -> bytes:
        """The CONNECT packet's bytes; ValueError for a combination the specification forbids."""
        _check_level(self.level)
        if not 0 <= self.keepalive_s <= TWO_BYTE_MAX:
            raise ValueError(f"keepalive_s must be 0 .. {TWO_BYTE_MAX}, not {self.keepalive_s}")
        v5 = self.level == MQTT_5
        if self.level == MQTT_3_1_1:
            if self.session_expiry_s is not None:
                raise ValueError("session_expiry_s is MQTT 5.0 only")
            if self.password is not None and self.username is None:
                raise ValueError("MQTT 3.1.1 needs a user name with a password")
            if not self.client_id and not self.clean_start:
                raise ValueError("MQTT 3.1.1 needs a client id unless clean_start")
        flags = 0x02 if self.clean_start else 0
        if self.will is not None:
            _check_qos(self.will.qos, "will qos")
            check_topic_name(self.will.topic)
            flags |= 0x04 | (self.will.qos << 3) | (0x20 if self.will.retain else 0)
        if self.password is not None:
            flags |= 0x40
        if self.username is not None:
            flags |= 0x80
        body = bytearray(_utf8("MQTT", "protocol name"))
        body += bytes((self.level, flags)) + struct.pack("!H", self.keepalive_s)
        if v5:
            properties = b""
            if self.session_expiry_s is not None:
                if not 0 <= self.session_expiry_s <= FOUR_BYTE_MAX:
                    raise ValueError(f"session_expiry_s must be 0 .. {FOUR_BYTE_MAX}")
                properties = bytes((PROPERTY_SESSION_EXPIRY,)) + struct.pack("!I", self.session_expiry_s)
            body += encode_varint(len(properties)) + properties
        body += _utf8(self.client_id, "client id")
        if self.will is not None:
            if v5:
                body += encode_varint(0)  # no will properties
            body += _utf8(self.will.topic, "will topic") + _binary(self.will.payload, "will payload")
        if self.username is not None:
            body += _utf8(self.username, "user name")
        if self.password is not None:
            body += _binary(self.password, "password")
        return _packet(CONNECT << 4, bytes(body))


@dataclass(frozen=True)
class Subscribe:
    """SUBSCRIBE (3.8): topic filters, each with the maximum QoS wanted."""

    packet_id: int
    filters: tuple[tuple[str, int], ...]

    def encode(self, level: int = MQTT_3_1_1) -> bytes:
        """The SUBSCRIBE packet's bytes (fixed header flags 0010)."""
        _check_level(level)
        _check_packet_id(self.packet_id)
        if not self.filters:
            raise ValueError("SUBSCRIBE needs at least one topic filter")
        body = bytearray(struct.pack("!H", self.packet_id))
        if level == MQTT_5:
            body += encode_varint(0)  # no properties
        for topic_filter, qos in self.filters:
            _check_qos(qos, "subscription qos")
            body += _topic_filter_bytes(topic_filter) + bytes((qos,))
        return _packet((SUBSCRIBE << 4) | 0x02, bytes(body))


@dataclass(frozen=True)
class Publish:
    """PUBLISH (3.3), either way; `packet_id` only with QoS 1 or 2. The payload is not shown in a repr."""

    topic: str
    payload: bytes = field(default=b"", repr=False)
    qos: int = 0
    retain: bool = False
    packet_id: int | None = None
    dup: bool = False
    properties: Mapping[int, Any] = field(default_factory=dict, repr=False, compare=False)  # 5.0, as decoded

    def encode(self, level: int = MQTT_3_1_1) -> bytes:
        """The PUBLISH packet's bytes; a client here publishes QoS 0 or 1."""
        _check_level(level)
        _check_qos(self.qos, "publish qos", highest=1)
        topic = _topic_name_bytes(self.topic)
        if self.qos == 0 and (self.packet_id is not None or self.dup):
            raise ValueError("a QoS 0 PUBLISH has no packet identifier and no DUP flag")
        first = (PUBLISH << 4) | (0x08 if self.dup else 0) | (self.qos << 1) | (0x01 if self.retain else 0)
        body = bytearray(topic)
        if self.qos:
            if self.packet_id is None:
                raise ValueError("a QoS 1 PUBLISH needs a packet identifier")
            _check_packet_id(self.packet_id)
            body += struct.pack("!H", self.packet_id)
        if level == MQTT_5:
            body += encode_varint(0)  # no properties
        body += self.payload
        return _packet(first, bytes(body))


@dataclass(frozen=True)
class Puback:
    """PUBACK (3.4), either way: the answer to a QoS 1 PUBLISH."""

    packet_id: int
    reason_code: int = 0  # 5.0 only; 0 is success

    def encode(self, level: int = MQTT_3_1_1) -> bytes:
        """The PUBACK packet's bytes (a 5.0 success is sent in the short form, as 3.1.1)."""
        _check_level(level)
        _check_packet_id(self.packet_id)
        body = struct.pack("!H", self.packet_id)
        if self.reason_code:
            if level != MQTT_5:
                raise ValueError("a PUBACK reason code is MQTT 5.0 only")
            body += bytes((self.reason_code,))
        return _packet(PUBACK << 4, body)

    @property
    def failure(self) -> str | None:
        """None for success or `no matching subscribers`, else the reason's name."""
        return None if self.reason_code < 0x80 else reason_name(self.reason_code)


@dataclass(frozen=True)
class Pingreq:
    """PINGREQ (3.12)."""

    def encode(self, level: int = MQTT_3_1_1) -> bytes:
        """C0 00."""
        return _packet(PINGREQ << 4, b"")


@dataclass(frozen=True)
class Disconnect:
    """DISCONNECT (3.14), either way; reason codes are MQTT 5.0 only."""

    reason_code: int = 0
    properties: Mapping[int, Any] = field(default_factory=dict, repr=False, compare=False)  # 5.0, as decoded

    def encode(self, level: int = MQTT_3_1_1) -> bytes:
        """E0 00 in 3.1.1; E0 01 <reason code> in 5.0."""
        _check_level(level)
        if level == MQTT_3_1_1:
            if self.reason_code:
                raise ValueError("a DISCONNECT reason code is MQTT 5.0 only")
            return _packet(DISCONNECT << 4, b"")
        return _packet(DISCONNECT << 4, bytes((self.reason_code,)))

    @property
    def reason(self) -> str:
        """The reason code's name (`normal disconnection`)."""
        return disconnect_reason(self.reason_code)


# --- server packets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connack:
    """CONNACK (3.2): whether the server took the connection, and whether it kept a session."""

    session_present: bool
    return_code: int  # 3.1.1's Connect Return Code, 5.0's Connect Reason Code
    level: int = MQTT_3_1_1
    properties: Mapping[int, Any] = field(default_factory=dict, repr=False, compare=False)  # 5.0

    @property
    def accepted(self) -> bool:
        """The connection was accepted (code 0)."""
        return self.return_code == 0

    @property
    def refusal(self) -> str | None:
        """None when accepted, else `connection refused: <name>`."""
        return connack_refusal(self.return_code, self.level)

    @property
    def server_keepalive_s(self) -> int | None:
        """5.0's Server Keep Alive, which replaces the CONNECT's keepalive; None when not sent."""
        value = self.properties.get(PROPERTY_SERVER_KEEP_ALIVE)
        return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Suback:
    """SUBACK (3.9): per topic filter of the SUBSCRIBE, the granted QoS or a failure code."""

    packet_id: int
    return_codes: tuple[int, ...]
    level: int = MQTT_3_1_1

    @property
    def granted_qos(self) -> tuple[int | None, ...]:
        """Per filter: the granted QoS, or None when it failed."""
        return tuple(code if code in (0, 1, 2) else None for code in self.return_codes)

    @property
    def failures(self) -> tuple[str, ...]:
        """The names of the failed filters' codes, in order (empty when all were granted)."""
        for code in self.return_codes:
            if code > 2:
                break
        else:  # every filter granted a QoS
            return ()
        names = (suback_failure(code, self.level) for code in self.return_codes)
        return tuple(name for name in names if name is not None)


@dataclass(frozen=True)
class Pingresp:
    """PINGRESP (3.13)."""


@dataclass(frozen=True)
class Unsuback:
    """UNSUBACK (3.11); 5.0 has a reason code per filter."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class QosTwoAck:
    """PUBREC, PUBREL or PUBCOMP (3.5 .. 3.7): the QoS 2 exchange, decoded but not driven here."""

    packet_type: int
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True)
class Auth:
    """AUTH (3.15, 5.0 only): enhanced authentication, decoded but not driven here."""

    reason_code: int = 0
    properties: Mapping[int, Any] = field(default_factory=dict, repr=False, compare=False)


Packet: TypeAlias = Connack | Publish | Puback | QosTwoAck | Suback | Unsuback | Pingresp | Disconnect | Auth


def packet_name(packet: Packet) -> str:
    """The packet's name in the specification (`PUBREC`), for messages that never quote its contents."""
    if isinstance(packet, QosTwoAck):
        return PACKET_NAMES[packet.packet_type]
    return type(packet).__name__.upper()


class _Reader:
    """Reads one packet's body, raising ProtocolError (naming the packet) when it ends early."""

    __slots__ = ("data", "offset", "packet_name")

    def __init__(self, data: bytes, packet_name: str) -> None:
        self.data = data  # the body (after the fixed header)
        self.offset = 0  # the next byte to read
        self.packet_name = packet_name  # named in errors

    def error(self, problem: str) -> ProtocolError:
        return ProtocolError(f"malformed {self.packet_name}: {problem}")

    @property
    def left(self) -> int:
        return len(self.data) - self.offset

    def take(self, count: int, what: str) -> bytes:
        offset = self.offset
        end = offset + count
        if end > len(self.data):
            raise self.error(f"{what} runs past the end of the packet")
        self.offset = end
        return self.data[offset:end]

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def two(self, what: str) -> int:
        value: int = struct.unpack("!H", self.take(2, what))[0]
        return value

    def four(self, what: str) -> int:
        value: int = struct.unpack("!I", self.take(4, what))[0]
        return value

    def varint(self, what: str) -> int:
        decoded = decode_varint(self.data, self.offset, what)
        if decoded is None:
            raise self.error(f"{what} runs past the end of the packet")
        value, self.offset = decoded
        return value

    def utf8(self, what: str) -> str:
        raw = self.take(self.two(what), what)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not valid UTF-8") from None
        if "\x00" in text:
            raise self.error(f"{what} contains U+0000")
        return text

    def binary(self, what: str) -> bytes:
        return self.take(self.two(what), what)

    def properties(self) -> dict[int, Any]:
        """A 5.0 property list (2.2.2): its length, then identifier and value pairs, each checked."""
        length = self.varint("property length")
        if length > self.left:
            raise self.error("property length runs past the end of the packet")
        end = self.offset + length
        found: dict[int, Any] = {}
        while self.offset < end:
            identifier = self.varint("property identifier")
            if identifier not in PROPERTIES_5:
                raise self.error(f"unknown property 0x{identifier:02x}")
            name, kind = PROPERTIES_5[identifier]
            value: Any
            if kind == BYTE:
                value = self.byte(name)
            elif kind == TWO:
                value = self.two(name)
            elif kind == FOUR:
                value = self.four(name)
            elif kind == VARINT:
                value = self.varint(name)
            elif kind == UTF8:
                value = self.utf8(name)
            elif kind == BINARY:
                value = self.binary(name)
            else:
                value = (self.utf8(name), self.utf8(name))
            if self.offset > end:
                raise self.error(f"{name} runs past the property length")
            if identifier in REPEATABLE_PROPERTIES:
                found[identifier] = (*found.get(identifier, ()), value)
            elif identifier in found:
                raise self.error(f"{name} appears twice")
            else:
                found[identifier] = value
        return found

    def done(self) -> None:
        if self.left:
            raise self.error(f"{self.left} unexpected bytes at the end")


# Packet types only a client sends; a server sending one is a protocol error.
CLIENT_ONLY = frozenset((CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ))
# The fixed-header flags each server packet must carry (2.2.2); PUBLISH's are its own.
REQUIRED_FLAGS = {PUBREL: 0x02}


class MqttDecoder:
    """Bytes from the server (any split across WebSocket frames) to packets; one per connection.

    A packet may arrive in pieces and a frame may hold several: `feed` buffers and returns
    every packet completed so far. The first ProtocolError ends the stream: every later
    `feed` raises it again.
    """

    def __init__(self, level: int = MQTT_3_1_1, max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES) -> None:
        _check_level(level)
        self.level = level  # the CONNECT's protocol level: how bodies and codes read
        self.max_packet_bytes = max_packet_bytes  # a longer packet is refused before it is buffered
        self._buffer = bytearray()  # bytes of packets not yet complete
        self._topic_aliases: dict[int, str] = {}  # 5.0 server topic aliases of this connection
        self.error: ProtocolError | None = None  # the error that ended the stream

    @property
    def buffered_bytes(self) -> int:
        """Bytes held of a packet not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """Add `data`; the packets it completed, in order. ProtocolError for malformed input."""
        if self.error is not None:
            raise self.error
        buffer = self._buffer
        if buffer:  # the start of a packet came before: read on from it
            buffer += data
        # Most frames hold whole packets: they are read in place, and only a packet's start is kept.
        source: bytes | bytearray = buffer if buffer else data
        packets: list[Packet] = []
        offset, end = 0, len(source)
        try:
            while end - offset >= 2:
                length = source[offset + 1]
                start = offset + 2
                if length & 0x80:  # a remaining length of more than one byte
                    header = decode_varint(source, offset + 1)
                    if header is None:
                        break
                    length, start = header
                if start - offset + length > self.max_packet_bytes:
                    raise ProtocolError(
                        f"packet of {start - offset + length} bytes exceeds the {self.max_packet_bytes}-byte limit"
                    )
                if end < start + length:
                    break
                first = source[offset]
                offset = start + length
                packets.append(self._decode(first >> 4, first & 0x0F, bytes(source[start:offset])))
        except ProtocolError as error:
            self.error = error
            buffer.clear()
            raise
        if source is buffer:
            del buffer[:offset]
        elif offset < end:
            buffer += data[offset:]
        return packets

    def _decode(self, packet_type: int, flags: int, body: bytes) -> Packet:
        name = PACKET_NAMES.get(packet_type)
        if name is None:
            raise ProtocolError("reserved packet type 0")
        if packet_type in CLIENT_ONLY:
            raise ProtocolError(f"{name} sent by the server (a client's packet)")
        v5 = self.level == MQTT_5
        if packet_type in (DISCONNECT, AUTH) and not v5:
            raise ProtocolError(f"{name} sent by the server (MQTT 5.0 only)")
        if packet_type != PUBLISH and flags != REQUIRED_FLAGS.get(packet_type, 0):
            raise ProtocolError(f"malformed {name}: reserved header flags set")
        reader = _Reader(body, name)
        if packet_type == PUBLISH:
            return self._publish(flags, reader)
        if packet_type == CONNACK:
            acknowledge = reader.byte("acknowledge flags")
            if acknowledge & 0xFE:
                raise reader.error("reserved acknowledge flags set")
            code = reader.byte("return code")
            if code and acknowledge:
                raise reader.error("session present with a refusal")
            properties = reader.properties() if v5 and reader.left else {}
            reader.done()
            return Connack(bool(acknowledge), code, self.level, properties)
        if packet_type == SUBACK:
            packet_id = reader.two("packet identifier")
            if v5:
                reader.properties()
            codes = tuple(reader.take(reader.left, "return codes"))
            if not codes:
                raise reader.error("no return codes")
            for code in codes:
                if code > 2 and (not v5 and code != SUBACK_FAILURE_3 or v5 and code < 0x80):
                    raise reader.error(f"reserved return code 0x{code:02x}")
            return Suback(packet_id, codes, self.level)
        if packet_type == UNSUBACK:
            packet_id = reader.two("packet identifier")
            if not v5:
                reader.done()
                return Unsuback(packet_id)
            reader.properties()
            return Unsuback(packet_id, tuple(reader.take(reader.left, "reason codes")))
        if packet_type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            packet_id = reader.two("packet identifier")
            code = 0
            if v5 and reader.left:
                code = reader.byte("reason code")
                if reader.left:
                    reader.properties()
            reader.done()
            if packet_type == PUBACK:
                return Puback(packet_id, code)
            return QosTwoAck(packet_type, packet_id, code)
        if packet_type == PINGRESP:
            reader.done()
            return Pingresp()
        # DISCONNECT and AUTH (5.0): a reason code and properties, both optional.
        code = reader.byte("reason code") if reader.left else 0
        properties = reader.properties() if reader.left else {}
        reader.done()
        if packet_type == DISCONNECT:
            return Disconnect(code, properties)
        return Auth(code, properties)

    def _publish(self, flags: int, reader: _Reader) -> Publish:
        qos = (flags >> 1) & 0x03
        dup = bool(flags & 0x08)
        if qos == 3:
            raise reader.error("QoS 3")
        if dup and qos == 0:
            raise reader.error("DUP set on QoS 0")
        topic = reader.utf8("topic name")
        if "+" in topic or "#" in topic:
            raise reader.error("wildcard in topic name")
        packet_id = None
        if qos:
            packet_id = reader.two("packet identifier")
            if packet_id == 0:
                raise reader.error("packet identifier 0")
        properties: dict[int, Any] = {}
        if self.level == MQTT_5:
            properties = reader.properties()
            alias = properties.get(PROPERTY_TOPIC_ALIAS)
            if alias is not None:
                if alias == 0:
                    raise reader.error("topic alias 0")
                if topic:
                    self._topic_aliases[alias] = topic
                elif alias in self._topic_aliases:
                    topic = self._topic_aliases[alias]
                else:
                    raise reader.error("unknown topic alias")
        if not topic:
            raise reader.error("empty topic name")
        payload = reader.take(reader.left, "payload")
        return Publish(topic, payload, qos, bool(flags & 0x01), packet_id, dup, properties)


def decode_all(data: bytes, level: int = MQTT_3_1_1) -> list[Packet]:
    """Every packet in `data`; ProtocolError when it is malformed or ends inside a packet."""
    decoder = MqttDecoder(level)
    packets = decoder.feed(data)
    if decoder.buffered_bytes:
        raise ProtocolError("data ends inside a packet")
    return packets


# --- a client session ----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _encoded(packet: Connect | Subscribe, level: int) -> bytes:
    """A CONNECT's or SUBSCRIBE's bytes, encoded once: a user sends the same ones every cycle.

    A CONNECT's password is the run's token, which the run's settings hold as long.
    """
    return packet.encode() if isinstance(packet, Connect) else packet.encode(level)


_NORMAL_DISCONNECT = {level: Disconnect().encode(level) for level in LEVELS}  # a clean close's DISCONNECT

NO_BYTES: tuple[bytes, ...] = ()
PING_TIMED_OUT = "no PINGRESP within the keepalive"


class MqttSession:
    """One client connection's MQTT state, sans-I/O: what to send now, and whether the session failed.

    The I/O layer sends `open()`'s CONNECT, passes every binary frame to `receive` (sending
    its replies at once: PUBACKs for QoS 1 PUBLISHes), sends what `due` returns when it
    wakes (a PINGREQ once the keepalive passed without sending), and asks `failure`: a
    refused CONNACK, a protocol error, a server DISCONNECT (5.0), or a PINGREQ that no
    PINGRESP answered within the keepalive. Times are seconds on any monotonic clock.
    Every byte string a method returns counts as sent at the `now_s` it was given.
    """

    def __init__(self, connect: Connect, max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES) -> None:
        self.connect = connect  # the CONNECT to send (its keepalive, level)
        self.level = connect.level  # the protocol level of every packet
        self.decoder = MqttDecoder(connect.level, max_packet_bytes)  # the server's byte stream
        self.connack: Connack | None = None  # the server's answer, once it came
        self.keepalive_s = connect.keepalive_s  # the CONNECT's, or the 5.0 Server Keep Alive
        self.awaiting_puback: dict[int, str] = {}  # QoS 1 PUBLISHes sent: packet id -> topic
        self.awaiting_suback: dict[int, tuple[tuple[str, int], ...]] = {}  # SUBSCRIBEs sent: packet id -> filters
        self.ping_sent_s: float | None = None  # when the unanswered PINGREQ went out
        self.last_sent_s: float | None = None  # when the client last sent anything (the keepalive counts from it)
        self.closed = False  # DISCONNECT sent
        self._failure: str | None = None  # why the session failed, once it did
        self._next_packet_id = 1  # where the search for a free packet identifier starts

    @property
    def connected(self) -> bool:
        """The CONNACK accepted the connection and nothing failed or closed since."""
        return self.connack is not None and self.connack.accepted and self._failure is None and not self.closed

    def _sent(self, data: bytes, now_s: float) -> bytes:
        self.last_sent_s = now_s
        return data

    def open(self, now_s: float) -> bytes:
        """The CONNECT to send first."""
        return self._sent(_encoded(self.connect, self.level), now_s)

    def _packet_id(self) -> int:
        """A packet identifier not in use by an unacknowledged PUBLISH or SUBSCRIBE (2.2.1)."""
        for _ in range(PACKET_ID_MAX):
            packet_id = self._next_packet_id
            self._next_packet_id = packet_id % PACKET_ID_MAX + 1
            if packet_id not in self.awaiting_puback and packet_id not in self.awaiting_suback:
                return packet_id
        raise ValueError("all 65535 packet identifiers are in use")

    def subscribe(self, filters: Sequence[tuple[str, int]], now_s: float) -> tuple[int, bytes]:
        """(packet id, SUBSCRIBE bytes) for `filters` (QoS 0 or 1: this session does not drive QoS 2)."""
        for _, qos in filters:
            _check_qos(qos, "subscription qos", highest=1)
        packet = Subscribe(self._packet_id(), tuple(filters))
        data = _encoded(packet, self.level)
        self.awaiting_suback[packet.packet_id] = packet.filters
        return packet.packet_id, self._sent(data, now_s)

    def publish(
        self, topic: str, payload: bytes, now_s: float, qos: int = 0, retain: bool = False
    ) -> tuple[int | None, bytes]:
        """(packet id or None for QoS 0, PUBLISH bytes); a QoS 1 one waits for its PUBACK."""
        packet_id = self._packet_id() if qos else None
        data = Publish(topic, payload, qos, retain, packet_id).encode(self.level)
        if packet_id is not None:
            self.awaiting_puback[packet_id] = topic
        return packet_id, self._sent(data, now_s)

    def receive(self, data: bytes, now_s: float) -> tuple[tuple[bytes, ...], tuple[Packet, ...]]:
        """Decode a binary frame: (replies to send at once, the packets it completed).

        Malformed bytes, a refused CONNACK or a server DISCONNECT set `failure` (nothing is
        raised); after a failure frames are ignored.
        """
        if self._failure is not None:
            return NO_BYTES, ()
        try:
            packets = self.decoder.feed(data)
        except ProtocolError as error:
            self._failure = f"protocol error: {error}"
            return NO_BYTES, ()
        replies: list[bytes] = []
        for index, packet in enumerate(packets):
            reply = self._handle(packet)
            if reply is not None:
                replies.append(self._sent(reply, now_s))
            if self._failure is not None:
                # Nothing after the failing packet counts (a refusal's CONNACK is still shown).
                return tuple(replies), tuple(packets[: index + 1])
        return tuple(replies), tuple(packets)

    def _handle(self, packet: Packet) -> bytes | None:
        """Bookkeeping for one packet; the reply it needs, if any."""
        if self.connack is None and not isinstance(packet, Connack):
            self._failure = f"protocol error: {packet_name(packet)} before CONNACK"
            return None
        if isinstance(packet, Connack):
            if self.connack is not None:
                self._failure = "protocol error: a second CONNACK"
                return None
            self.connack = packet
            if packet.refusal is not None:
                self._failure = packet.refusal
            elif packet.server_keepalive_s is not None:
                self.keepalive_s = packet.server_keepalive_s
        elif isinstance(packet, Publish):
            if packet.qos == 2:
                self._failure = "protocol error: QoS 2 PUBLISH on a QoS 0/1 session"
            elif packet.qos == 1 and packet.packet_id is not None:
                return Puback(packet.packet_id).encode(self.level)
        elif isinstance(packet, Puback):
            self.awaiting_puback.pop(packet.packet_id, None)
        elif isinstance(packet, Suback):
            self.awaiting_suback.pop(packet.packet_id, None)
        elif isinstance(packet, Pingresp):
            self.ping_sent_s = None
        elif isinstance(packet, Disconnect):
            self._failure = f"server disconnected: {packet.reason}"
        return None

    def due(self, now_s: float) -> tuple[bytes, ...]:
        """What to send now: a PINGREQ when the keepalive passed since the client last sent (3.1.2.10)."""
        if not self.connected or self.keepalive_s == 0 or self.ping_sent_s is not None:
            return NO_BYTES
        if self.last_sent_s is None or now_s - self.last_sent_s >= self.keepalive_s:
            self.ping_sent_s = now_s
            return (self._sent(Pingreq().encode(self.level), now_s),)
        return NO_BYTES

    def failure(self, now_s: float) -> str | None:
        """Why the session failed (a short stable reason, no payload or secret), or None while it is fine."""
        if self._failure is None and self.ping_sent_s is not None and now_s - self.ping_sent_s > self.keepalive_s:
            self._failure = PING_TIMED_OUT
        return self._failure

    def next_check_s(self) -> float | None:
        """When `due` or `failure` may next change by time alone (the I/O layer's wake-up), or None."""
        if not self.connected or self.keepalive_s == 0:
            return None
        if self.ping_sent_s is not None:
            return self.ping_sent_s + self.keepalive_s
        return (self.last_sent_s or 0.0) + self.keepalive_s

    def close(self, now_s: float) -> bytes:
        """The DISCONNECT of a clean close (reason 0, normal disconnection, in 5.0)."""
        self.closed = True
        return self._sent(_NORMAL_DISCONNECT[self.level], now_s)


# --- the server's side (the bundled server's MQTT mode): client packets in, server packets out ----


def encode_connack(session_present: bool, code: int, level: int = MQTT_3_1_1) -> bytes:
    """CONNACK (3.2): the acknowledge flags and the return (3.1.1) or reason (5.0) code; no 5.0 properties."""
    _check_level(level)
    body = bytes((0x01 if session_present and code == 0 else 0, code))
    return _packet(CONNACK << 4, body + (encode_varint(0) if level == MQTT_5 else b""))


def encode_suback(packet_id: int, codes: Sequence[int], level: int = MQTT_3_1_1) -> bytes:
    """SUBACK (3.9): per filter, the granted QoS or a failure code."""
    _check_level(level)
    _check_packet_id(packet_id)
    properties = encode_varint(0) if level == MQTT_5 else b""
    return _packet(SUBACK << 4, struct.pack("!H", packet_id) + properties + bytes(codes))


def encode_unsuback(packet_id: int, count: int, level: int = MQTT_3_1_1) -> bytes:
    """UNSUBACK (3.11): 5.0 adds a success reason code per filter."""
    _check_level(level)
    body = struct.pack("!H", packet_id)
    if level == MQTT_5:
        body += encode_varint(0) + bytes(count)
    return _packet(UNSUBACK << 4, body)


PINGRESP_BYTES = _packet(PINGRESP << 4, b"")


@dataclass(frozen=True)
class Unsubscribe:
    """UNSUBSCRIBE (3.10), as a server reads it."""

    packet_id: int
    filters: tuple[str, ...]


ClientPacket: TypeAlias = Connect | Subscribe | Unsubscribe | Publish | Puback | Pingreq | Disconnect


class ClientPacketDecoder(MqttDecoder):
    """A client's byte stream to packets, for a server: CONNECT first (its level sets how the rest read).

    Like `MqttDecoder`, buffers across frames and raises ProtocolError (short, no payload)
    for malformed input; QoS 2 and AUTH are outside what the bundled server speaks.
    """

    def __init__(self, max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES) -> None:
        super().__init__(MQTT_3_1_1, max_packet_bytes)
        self.connected = False  # the CONNECT was read

    def feed(self, data: bytes) -> list[ClientPacket]:  # type: ignore[override]
        """Add `data`; the client packets it completed, in order."""
        return super().feed(data)  # type: ignore[return-value]

    def _decode(self, packet_type: int, flags: int, body: bytes) -> Any:
        name = PACKET_NAMES.get(packet_type, "reserved packet type")
        if not self.connected and packet_type != CONNECT:
            raise ProtocolError(f"{name} before CONNECT")
        reader = _Reader(body, name)
        if packet_type == CONNECT:
            if self.connected:
                raise ProtocolError("a second CONNECT")
            return self._connect(reader)
        v5 = self.level == MQTT_5
        if packet_type == PUBLISH:
            return self._publish(flags, reader)
        if packet_type in (SUBSCRIBE, UNSUBSCRIBE):
            if flags != 0x02:
                raise reader.error("reserved header flags")
            packet_id = reader.two("packet identifier")
            if v5:
                reader.properties()
            topics: list[tuple[str, int]] = []
            while reader.left:
                topic_filter = reader.utf8("topic filter")
                qos = reader.byte("subscription options") & 0x03 if packet_type == SUBSCRIBE else 0
                topics.append((topic_filter, qos))
            if not topics:
                raise reader.error("no topic filter")
            if packet_type == UNSUBSCRIBE:
                return Unsubscribe(packet_id, tuple(topic for topic, _ in topics))
            return Subscribe(packet_id, tuple(topics))
        if packet_type == PUBACK:
            packet_id = reader.two("packet identifier")
            code = reader.byte("reason code") if v5 and reader.left else 0
            return Puback(packet_id, code)
        if packet_type == PINGREQ:
            reader.done()
            return Pingreq()
        if packet_type == DISCONNECT:
            code = reader.byte("reason code") if v5 and reader.left else 0
            return Disconnect(code)
        raise ProtocolError(f"{name} is not served here")

    def _connect(self, reader: _Reader) -> Connect:
        if reader.utf8("protocol name") != "MQTT":
            raise reader.error("protocol name is not MQTT")
        level = reader.byte("protocol level")
        if level not in LEVELS:
            raise ProtocolError(f"unsupported protocol level {level}")
        self.level = level
        flags = reader.byte("connect flags")
        if flags & 0x01:
            raise reader.error("reserved connect flag set")
        keepalive_s = reader.two("keep alive")
        expiry = None
        if level == MQTT_5:
            expiry = reader.properties().get(PROPERTY_SESSION_EXPIRY)
        client_id = reader.utf8("client id")
        will = None
        if flags & 0x04:
            if level == MQTT_5:
                reader.properties()
            topic = reader.utf8("will topic")
            will = Will(topic, reader.binary("will payload"), (flags >> 3) & 0x03, bool(flags & 0x20))
        username = reader.utf8("user name") if flags & 0x80 else None
        password = reader.binary("password") if flags & 0x40 else None
        reader.done()
        self.connected = True
        return Connect(client_id, level, bool(flags & 0x02), keepalive_s, username, password, will, expiry)


def describe_packets(packets: Iterable[Packet]) -> str:
    """`CONNACK, PUBLISH` — packet names for a log line, never their payloads."""
    return ", ".join(packet_name(packet) for packet in packets)


__all__ = [
    "PINGRESP_BYTES",
    "ClientPacket",
    "ClientPacketDecoder",
    "Unsubscribe",
    "encode_connack",
    "encode_suback",
    "encode_unsuback",
    "MQTT_3_1_1",
    "MQTT_5",
    "SUBPROTOCOL",
    "Auth",
    "Connack",
    "Connect",
    "Disconnect",
    "MqttDecoder",
    "MqttSession",
    "Packet",
    "Pingreq",
    "Pingresp",
    "ProtocolError",
    "Puback",
    "Publish",
    "QosTwoAck",
    "Suback",
    "Subscribe",
    "Unsuback",
    "Will",
    "check_topic_filter",
    "check_topic_name",
    "connack_refusal",
    "decode_all",
    "decode_varint",
    "disconnect_reason",
    "encode_varint",
    "packet_name",
    "reason_name",
    "suback_failure",
    "topic_matches",
]
