"""Socket.IO 5 over Engine.IO 4, WebSocket transport only: packets, and the framing of a conversation.

Written from the published protocol documents (socketio/socket.io-protocol, v5;
socketio/engine.io-protocol, v4). Each WebSocket text frame is one Engine.IO packet: a type
digit (`0` open, `1` close, `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop) and its
data. A message packet carries one Socket.IO packet:

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

with types 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT,
6 BINARY_ACK; the namespace is written only when it is not "/". The packet functions
(`encode_packet`, `decode_packet`, `connect_error_class`) are pure and shared with the bundled
server's Socket.IO mode.

Steps of a conversation with `protocol: socketio`:

- `emit: [EVENT, ARG, ...]` (or `emit: EVENT`) sends an EVENT; with `ack:` it asks for an
  acknowledgement and waits for it: the ack's first argument must contain `ack` (a JSON
  subset; `ack: null` takes any ack). Ack ids count from 0 per connection, as the official client.
- `expect_event: EVENT` waits for that event, with `data:` a JSON subset of its first argument.
- `send: VALUE` emits the `message` event with VALUE, as the official client's `socket.send`.
- `expect`, `expect_text`, `expect_regex` test an EVENT's payload, the JSON array
  `["event", arg, ...]` as the server wrote it.
Packets of other namespaces are skipped. Binary events and acks are not supported: one that
arrives while awaited fails the step, otherwise it is skipped.

Connection state recovery (`resume: true`, Socket.IO 4.6+), as the reference client does
it: the server's CONNECT answer carries the session's private id `pid` when recovery is on,
and each event then carries its offset as an extra last argument (a string). The client
keeps the pid and the offset of the last event it got, and a reconnect sends both in its
CONNECT payload (`{"pid": ..., "offset": ...}` besides the auth). The server recovered the
session when its answer carries the same pid. A clean disconnect (the namespace DISCONNECT)
ends the session on purpose: the next connect starts a new one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scenarios.continuity import UserCarry
from scenarios.conversation import (
    MATCHED,
    NOT_IT,
    RAW_ACTIONS,
    SEND,
    Conversation,
    ConversationError,
    Expectation,
    MatchResult,
    Message,
    Step,
    Variables,
    compact_json,
    contains,
    make_step,
)
from scenarios.protocols import (
    NO_FRAMES,
    ConnectionFraming,
    WireProtocol,
    check_payload_setting,
    payload_with_token,
)
from scenarios.protocols.awaiting import Awaiting

# Engine.IO v4 packet types (the first character of every frame).
EIO_OPEN = "0"
EIO_CLOSE = "1"
EIO_PING = "2"
EIO_PONG = "3"
EIO_MESSAGE = "4"
EIO_UPGRADE = "5"
EIO_NOOP = "6"

# Socket.IO v5 packet types.
CONNECT = 0
DISCONNECT = 1
EVENT = 2
ACK = 3
CONNECT_ERROR = 4
BINARY_EVENT = 5
BINARY_ACK = 6

MAIN_NAMESPACE = "/"
DEFAULT_PATH = "/socket.io/"
# Event names the official client refuses to emit: they are the socket's own events.
RESERVED_EVENTS = frozenset(
    ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
)

EMIT = "emit"
EXPECT_EVENT = "expect_event"
CONNECT_NAMESPACE = "socketio_connect"  # the opening step's action (not usable in files)
OPENING_STEP_NAME = "namespace"  # the Locust row of the namespace connect

# Message kinds (Message.kind) this framing hands to the I/O layer.
KIND_EVENT = "event"
KIND_ACK = "ack"
KIND_CONNECT = "connect"
KIND_CONNECT_ERROR = "connect_error"
KIND_DISCONNECT = "disconnect"
KIND_BINARY_EVENT = "binary_event"
KIND_BINARY_ACK = "binary_ack"
KIND_CLOSE = "close"  # Engine.IO close packet
KIND_INVALID = "invalid"  # a frame that is not a valid packet

# Failure reasons (stable; never a payload).
ENGINE_CLOSED = "closed by server: engine.io close"
NAMESPACE_DISCONNECTED = "namespace disconnected by server"
MALFORMED_ENGINE = "malformed Engine.IO packet"
MALFORMED_SOCKET = "malformed Socket.IO packet"
BINARY_EVENT_FAILURE = "binary events not supported"
BINARY_ACK_FAILURE = "binary acks not supported"
ACK_MISMATCH = "ack did not match"


class PacketError(ValueError):
    """A frame that is not a valid Socket.IO packet (the message says what, never the payload)."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded Socket.IO packet."""

    type: int  # CONNECT ... BINARY_ACK
    namespace: str = MAIN_NAMESPACE  # "/" or "/name"
    data: Any = None  # the decoded JSON payload; None when absent
    id: int | None = None  # the ack id
    attachments: int = 0  # binary attachments announced (BINARY_EVENT, BINARY_ACK)
    payload: str = ""  # the payload's JSON text as received ("" when absent)


def encode_packet(
    type: int, namespace: str = MAIN_NAMESPACE, data: Any = None, id: int | None = None, *, payload: str | None = None
) -> str:
    """A Socket.IO packet as text, without the Engine.IO message prefix `4`.

    `payload` is the data's JSON text when the caller already has it (else `data` is encoded;
    None means no payload).
    """
    text = str(type)
    if namespace != MAIN_NAMESPACE:
        text += namespace + ","
    if id is not None:
        text += str(id)
    if payload is not None:
        return text + payload
    if data is not None:
        text += compact_json(data)
    return text


def encode_message(
    type: int, namespace: str = MAIN_NAMESPACE, data: Any = None, id: int | None = None, *, payload: str | None = None
) -> str:
    """A Socket.IO packet in an Engine.IO message packet: the text of one WebSocket frame."""
    return EIO_MESSAGE + encode_packet(type, namespace, data, id, payload=payload)


def decode_packet(text: str) -> Packet:
    """Decode a Socket.IO packet (without the Engine.IO `4`); PacketError when it is not one."""
    if not text or not "0" <= text[0] <= "6":
        raise PacketError("unknown Socket.IO packet type")
    type = ord(text[0]) - 48
    i = 1
    n = len(text)
    attachments = 0
    if type in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", i)
        if dash < 0 or not text[i:dash].isdigit():
            raise PacketError("binary packet without its attachment count")
        attachments = int(text[i:dash])
        i = dash + 1
    namespace = MAIN_NAMESPACE
    if i < n and text[i] == "/":
        comma = text.find(",", i)
        end = n if comma < 0 else comma
        namespace = text[i:end]
        i = end + 1
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    ack_id = int(text[start:i]) if i > start else None
    payload = text[i:]
    data: Any = None
    if payload:
        try:
            data = json.loads(payload)
        except ValueError:
            raise PacketError("payload is not JSON") from None
    if type in (EVENT, BINARY_EVENT) and not (isinstance(data, list) and data and isinstance(data[0], str)):
        raise PacketError("an event's payload must be a list starting with its name")
    if type in (ACK, BINARY_ACK) and (ack_id is None or not isinstance(data, list)):
        raise PacketError("an ack needs an id and a list payload")
    if type == CONNECT and data is not None and not isinstance(data, dict):
        raise PacketError("a CONNECT payload must be an object")
    if type == DISCONNECT and payload:
        raise PacketError("a DISCONNECT has no payload")
    return Packet(type, namespace, data, ack_id, attachments, payload)


def decode_engine_packet(text: str) -> tuple[str, str]:
    """Split an Engine.IO text packet into its type digit and data; PacketError when it is none."""
    if not text or not "0" <= text[0] <= "6":
        raise PacketError("unknown Engine.IO packet type")
    return text[0], text[1:]


# How a CONNECT_ERROR's message (chosen by the server's application) is reported: as a class,
# never the text itself, which may quote a token or a user name.
_AUTH_WORDS = re.compile(r"auth|token|credential|forbidden|denied|permission|login|password|jwt|expired|session", re.I)
_NAMESPACE_WORDS = re.compile(r"namespace", re.I)


def connect_error_class(data: Any) -> str:
    """The class of a CONNECT_ERROR payload: `invalid namespace`, `unauthorized` or `rejected`."""
    message = data.get("message") if isinstance(data, Mapping) else data
    if not isinstance(message, str):
        return "rejected"
    if _NAMESPACE_WORDS.search(message):
        return "invalid namespace"
    if _AUTH_WORDS.search(message):
        return "unauthorized"
    return "rejected"


def _event_args(step: Step, variables: Variables) -> list[Any]:
    value = step.resolved(variables)
    return [value] if isinstance(value, str) else list(value)


class SocketIOFraming(ConnectionFraming):
    """One Socket.IO connection: its Engine.IO handshake data, namespace state and ack ids."""

    goodbye_ends_session = True  # the namespace DISCONNECT: the server keeps nothing to recover

    def __init__(self, protocol: SocketIOProtocol, carry: UserCarry | None = None) -> None:
        self.protocol = protocol  # settings, shared by every connection of the run
        # The user's resume state across reconnects (pid, offset), when the file says `resume: true`.
        self.carry = carry if protocol.resume else None
        self._asked_pid: str | None = None  # the pid this connection's CONNECT asked to recover
        self.namespace = protocol.namespace  # the namespace this connection talks on
        self.handshake: dict[str, Any] | None = None  # the Engine.IO open packet's data
        self.ping_interval_ms: float | None = None  # from the open packet
        self.ping_timeout_ms: float | None = None  # from the open packet
        self.sid: str | None = None  # the namespace's session id, from the CONNECT answer
        self.connected = False  # the namespace answered CONNECT
        self.ended: str | None = None  # why the Socket.IO session ended (see ConnectionFraming)
        self._pending_connect: str | None = None  # CONNECT frame held until the open packet came
        self._next_ack_id = 0  # the next emit's ack id
        self._last_ack_id: int | None = None  # the ack id of the step just sent (its expectation's)
        self._attachments_due = 0  # binary frames announced by a BINARY_EVENT or BINARY_ACK, still to skip
        self._prefix_event = encode_message(EVENT, self.namespace)  # "42" or "42/chat,"

    # --- steps to frames ---------------------------------------------------------------------

    def outgoing(self, step: Step, variables: Variables) -> tuple[str, ...]:
        """The frames of `step`: the CONNECT (once the open packet came), an EVENT, nothing for expects."""
        action = step.action
        if action == EMIT:
            args = _event_args(step, variables)
            if "ack" in step.options:
                ack_id = self._next_ack_id
                self._next_ack_id += 1
                self._last_ack_id = ack_id
                return (self._prefix_event + str(ack_id) + compact_json(args),)
            return (self._prefix_event + compact_json(args),)
        if action == SEND:
            return (self._prefix_event + compact_json(["message", step.resolved(variables)]),)
        if action == CONNECT_NAMESPACE:
            frame = encode_message(CONNECT, self.namespace, self._connect_payload(variables))
            if self.handshake is None:
                # The client speaks once the server's open packet came; `receive` sends it then.
                self._pending_connect = frame
                return NO_FRAMES
            return (frame,)
        return NO_FRAMES

    def _connect_payload(self, variables: Variables) -> dict[str, Any] | None:
        """The CONNECT payload: the auth, plus the pid and offset of the session to recover, if any."""
        payload = self.protocol.auth(variables)
        carry = self.carry
        if carry is None or not carry.resuming:
            return payload
        state = carry.protocol_state
        pid = state.get("pid")
        if not isinstance(pid, str):
            return payload  # the server never gave a pid: recovery is off there
        self._asked_pid = pid
        recovery: dict[str, Any] = {"pid": pid}
        if isinstance(state.get("offset"), str):
            recovery["offset"] = state["offset"]
        return {**recovery, **(payload or {})}

    def expectation(self, step: Step, variables: Variables) -> Expectation | None:
        """What `step` waits for: the CONNECT answer, an ack, an event, or a raw match on an event's payload."""
        action = step.action
        if action == EMIT:
            if "ack" not in step.options or self._last_ack_id is None:
                return None
            return self._ack_expectation(self._last_ack_id, step.option("ack", variables))
        if action == EXPECT_EVENT:
            return self._event_expectation(
                step.resolved(variables), "data" in step.options, step.option("data", variables)
            )
        if action == CONNECT_NAMESPACE:
            return self._connect_expectation()
        raw = super().expectation(step, variables)
        if raw is None:
            return None
        return self._on_events(raw)

    def _connect_expectation(self) -> Expectation:
        def test(message: Message) -> MatchResult:
            kind = message.kind
            if kind == KIND_CONNECT:
                return MATCHED
            if kind == KIND_CONNECT_ERROR:
                return f"namespace refused: {connect_error_class(message.args)}"
            return _session_failure(kind) or NOT_IT

        def reason(expectation: Awaiting) -> str:
            if self.handshake is None:
                return "engine.io open timed out"
            return "namespace connect timed out"

        return Awaiting(test, reason)

    def _ack_expectation(self, ack_id: int, expected: Any) -> Expectation:
        def test(message: Message) -> MatchResult:
            kind = message.kind
            if kind == KIND_ACK:
                if message.key != ack_id:
                    return NOT_IT
                args = message.args
                if expected is None or (args and contains(expected, args[0])):
                    return MATCHED
                return ACK_MISMATCH  # an ack comes once: a wrong one fails at once
            if kind == KIND_BINARY_ACK and message.key == ack_id:
                return BINARY_ACK_FAILURE
            return _session_failure(kind) or NOT_IT

        return Awaiting(test, "ack timed out")

    def _event_expectation(self, event: str, has_data: bool, data: Any) -> Expectation:
        def test(message: Message) -> MatchResult:
            kind = message.kind
            if kind == KIND_EVENT:
                if message.key != event:
                    return NOT_IT
                if not has_data:
                    return MATCHED
                args = message.args
                if args and contains(data, args[0]):
                    return MATCHED
                expectation.near_misses += 1
                return NOT_IT
            if kind == KIND_BINARY_EVENT and message.key == event:
                return BINARY_EVENT_FAILURE
            return _session_failure(kind) or NOT_IT

        def reason(awaiting: Awaiting) -> str:
            return "expect_event timed out: data did not match" if awaiting.near_misses else "expect_event timed out"

        expectation = Awaiting(test, reason)
        return expectation

    def _on_events(self, raw: Expectation) -> Expectation:
        """A raw expect, applied to the payloads of EVENT packets only."""
        predicate = raw.predicate

        def test(message: Message) -> MatchResult:
            kind = message.kind
            if kind == KIND_EVENT:
                return predicate(message)
            return _session_failure(kind) or NOT_IT

        raw.predicate = test
        return raw

    # --- frames to messages ------------------------------------------------------------------

    def receive(self, text: str) -> tuple[tuple[str, ...], tuple[Message, ...]]:
        """Decode one frame: pongs and a held CONNECT to send back, the Socket.IO messages of our namespace.

        The binary attachments a BINARY_EVENT or BINARY_ACK announced are skipped, however the
        I/O layer hands them over (binary frames decoded as text).
        """
        if self._attachments_due:
            self._attachments_due -= 1
            return NO_FRAMES, ()
        first = text[:1]
        if first == EIO_MESSAGE:
            return NO_FRAMES, self._socketio(text[1:])
        if first == EIO_PING:
            return (EIO_PONG + text[1:],), ()
        if first == EIO_OPEN:
            return self._open(text[1:]), ()
        if first == EIO_CLOSE:
            self.ended = self.ended or ENGINE_CLOSED
            return NO_FRAMES, (Message(text, KIND_CLOSE),)
        if first in (EIO_PONG, EIO_NOOP, EIO_UPGRADE):
            return NO_FRAMES, ()
        self.ended = self.ended or MALFORMED_ENGINE
        return NO_FRAMES, (Message(text, KIND_INVALID, MALFORMED_ENGINE),)

    def _open(self, data: str) -> tuple[str, ...]:
        try:
            handshake = json.loads(data)
        except ValueError:
            handshake = None
        if not isinstance(handshake, dict):
            self.ended = self.ended or MALFORMED_ENGINE
            return NO_FRAMES
        self.handshake = handshake
        interval, timeout = handshake.get("pingInterval"), handshake.get("pingTimeout")
        self.ping_interval_ms = float(interval) if isinstance(interval, (int, float)) else None
        self.ping_timeout_ms = float(timeout) if isinstance(timeout, (int, float)) else None
        frame, self._pending_connect = self._pending_connect, None
        return (frame,) if frame is not None else NO_FRAMES

    def _socketio(self, text: str) -> tuple[Message, ...]:
        try:
            packet = decode_packet(text)
        except PacketError:
            self.ended = self.ended or MALFORMED_SOCKET
            return (Message(text, KIND_INVALID, MALFORMED_SOCKET),)
        self._attachments_due = packet.attachments  # a binary packet's frames follow it, to be skipped
        if packet.namespace != self.namespace:
            return ()  # another namespace's: not this conversation's
        type = packet.type
        if type == EVENT:
            data = packet.data
            carry = self.carry
            if carry is not None and len(data) > 1 and isinstance(data[-1], str) and "pid" in carry.protocol_state:
                carry.protocol_state["offset"] = data[-1]  # recovery on: the last argument is the offset
            return (Message(packet.payload, KIND_EVENT, data[0], data[1:]),)
        if type == ACK:
            return (Message(packet.payload, KIND_ACK, packet.id, packet.data),)
        if type == CONNECT:
            self.connected = True
            data = packet.data
            self.sid = data.get("sid") if isinstance(data, dict) and isinstance(data.get("sid"), str) else None
            if self.carry is not None:
                self._connected(data.get("pid") if isinstance(data, dict) else None)
            return (Message(packet.payload, KIND_CONNECT),)
        if type == CONNECT_ERROR:
            self.ended = self.ended or f"namespace refused: {connect_error_class(packet.data)}"
            return (Message(packet.payload, KIND_CONNECT_ERROR, args=packet.data),)
        if type == DISCONNECT:
            self.connected = False
            self.ended = self.ended or NAMESPACE_DISCONNECTED
            return (Message(packet.payload, KIND_DISCONNECT),)
        if type == BINARY_EVENT:
            return (Message(packet.payload, KIND_BINARY_EVENT, packet.data[0]),)
        return (Message(packet.payload, KIND_BINARY_ACK, packet.id),)

    def _connected(self, pid: Any) -> None:
        """The CONNECT answer: keep its pid; tell the carry whether the server recovered the session asked for."""
        carry = self.carry
        assert carry is not None
        recovered = isinstance(pid, str) and pid == self._asked_pid
        state = carry.protocol_state
        if isinstance(pid, str):
            if state.get("pid") != pid:
                state.pop("offset", None)  # a new session: offsets of the old one mean nothing to it
            state["pid"] = pid
        else:
            state.clear()
        if carry.resuming:
            carry.server_answered(recovered)

    def goodbye(self) -> tuple[str, ...]:
        """The namespace DISCONNECT, as the official client sends before closing."""
        if self.ended is not None and not self.connected:
            return NO_FRAMES
        return (encode_message(DISCONNECT, self.namespace),)


def _session_failure(kind: str) -> str | None:
    """The failure an awaited step gets from a message that ends the Socket.IO session, else None."""
    if kind == KIND_DISCONNECT:
        return NAMESPACE_DISCONNECTED
    if kind == KIND_CLOSE:
        return ENGINE_CLOSED
    if kind == KIND_INVALID:
        return MALFORMED_SOCKET
    return None


def _check_namespace(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "," in value or "?" in value:
        raise ConversationError(f'{key}: must be a name starting with "/" (no "," or "?")')
    return value


class SocketIOProtocol(WireProtocol):
    """Socket.IO 5 over Engine.IO 4, WebSocket transport only (see the module's docstring)."""

    name = "socketio"
    actions: Mapping[str, frozenset[str]] = {
        **RAW_ACTIONS,
        EMIT: frozenset(("ack",)),
        EXPECT_EVENT: frozenset(("data",)),
    }
    settings_keys = frozenset(("path", "namespace", "auth"))
    auth_places = ("payload",)

    def __init__(self, conversation: Conversation, auth_in_payload: bool = False) -> None:
        super().__init__(conversation, auth_in_payload)
        self.validate(conversation)
        settings = conversation.settings
        self.path: str = settings.get("path", DEFAULT_PATH)  # the Engine.IO path on the server
        self.namespace_setting: str | None = settings.get("namespace")  # the file's namespace, if it names one
        self.namespace: str = self.namespace_setting or MAIN_NAMESPACE  # may be set from --host by url()
        self.auth_setting: Mapping[str, Any] | None = settings.get("auth")  # the CONNECT auth payload, templated
        self._opening = (make_step(CONNECT_NAMESPACE, None, OPENING_STEP_NAME),)  # the namespace connect
        self.resume: bool = conversation.resume  # keep pid and offset, and recover the session on reconnect

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """path and namespace are names starting with "/"; auth is a mapping."""
        if "path" in settings:
            _check_namespace(settings["path"], "path")
        if "namespace" in settings:
            _check_namespace(settings["namespace"], "namespace")
        check_payload_setting(settings, "auth", "the CONNECT packet's auth payload")

    @classmethod
    def check_step(cls, step: Step) -> None:
        """emit names an event (not a reserved one); expect_event names one."""
        if step.action == EMIT:
            value = step.value
            event = value if isinstance(value, str) else value[0] if isinstance(value, list) and value else None
            if not isinstance(event, str) or not event:
                raise ConversationError("emit takes [EVENT, ARG, ...]: a list starting with the event name")
            if event in RESERVED_EVENTS:
                raise ConversationError(f"emit: {event!r} is a reserved Socket.IO event name")
        elif step.action == EXPECT_EVENT:
            if not isinstance(step.value, str) or not step.value:
                raise ConversationError("expect_event takes an event name")

    def url(self, base_url: str) -> str:
        """`ws://host:port/socket.io/?<host's query>&EIO=4&transport=websocket`.

        As the official client: a path in --host (`ws://host/chat`) names the namespace,
        unless the file names one; the Engine.IO path is the `path` setting.
        """
        parts = urlsplit(base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        if self.namespace_setting is None and parts.path not in ("", "/"):
            self.namespace = parts.path.rstrip("/") or MAIN_NAMESPACE
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("EIO", "transport")]
        query += [("EIO", "4"), ("transport", "websocket")]
        return urlunsplit((scheme, parts.netloc, self.path, urlencode(query), ""))

    def opening(self) -> tuple[Step, ...]:
        """One step, the `namespace` row: CONNECT, answered by CONNECT (or CONNECT_ERROR)."""
        return self._opening

    def connection(self, carry: UserCarry | None = None) -> SocketIOFraming:
        """A new connection's framing; `carry` keeps its user's session id and offset across reconnects."""
        return SocketIOFraming(self, carry)

    def auth(self, variables: Variables) -> dict[str, Any] | None:
        """The CONNECT packet's auth payload: the `auth` setting, plus the token when it goes in the payload."""
        return payload_with_token(self.auth_setting, variables, self.auth_in_payload)
