"""Wire protocols: how a conversation's steps become WebSocket frames, and frames become messages.

Sans-I/O, like `scenarios.conversation`: a `WireProtocol` (one per run) names its step
actions, its top-level settings and subprotocols, builds the URL, and makes a
`ConnectionFraming` per connection, which encodes steps, decodes frames, answers the
protocol's own pings and says what to send before a clean close. `scenarios.exchange`
moves the frames. `raw` is plain WebSocket text (and binary frames: `send_binary`,
`expect_binary`); `socketio` and `graphql-ws` frame on top of text, `mqtt` on binary frames.
A frame is a `str` (a text frame) or `bytes` (a binary frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scenarios.continuity import UserCarry
from scenarios.conversation import (
    BINARY_KIND,
    EXPECT,
    EXPECT_BINARY,
    EXPECT_REGEX,
    EXPECT_TEXT,
    PARTS,
    RAW_ACTIONS,
    SEND,
    SEND_BINARY,
    Conversation,
    ConversationError,
    Expectation,
    Message,
    Step,
    Variables,
    as_text,
    binary_bytes,
    binary_expectation,
    hex_prefix,
    json_expectation,
    parse_conversation,
    regex_expectation,
    split_messages,
    substitute,
    text_expectation,
    unknown_variables,
)

Frame = str | bytes  # a text frame or a binary frame
NO_FRAMES: tuple[str, ...] = ()

# Standard close codes (RFC 6455, 7.4.1, and the IANA registry), named in failure messages.
CLOSE_CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status",
    1006: "abnormal closure",
    1007: "invalid payload",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
}


def describe_close_code(code: int | None, names: Mapping[int, str] | None = None) -> str:
    """`closed by server: 1011 internal error` — the code and its class, never the reason text."""
    if code is None:
        return "closed by server: no status"
    name = (names or {}).get(code) or CLOSE_CODE_NAMES.get(code)
    if name is None:
        name = "application" if 4000 <= code <= 4999 else "registered" if 3000 <= code <= 3999 else "unknown"
    return f"closed by server: {code} {name}"


class ConnectionFraming:
    """The framing of one connection: steps to frames, frames to messages (raw WebSocket text).

    Subclasses keep per-connection state (ack ids, operation ids); raw keeps none, so one
    instance serves every connection. Raw text may carry several messages a frame, each
    ended or separated by `separator` (`split:`), and end each send with it (`terminate:`).
    """

    # Set (a short stable failure reason) once the protocol's session ended while the socket
    # is still open (Socket.IO's server DISCONNECT, Engine.IO close); raw never sets it.
    ended: str | None = None
    separator: str | None = None  # between (or after) the messages of a frame; None: one message a frame
    terminator: str = ""  # appended to each send

    def __init__(self, separator: str | None = None, terminate: bool = False) -> None:
        self.separator = separator  # between (or after) the messages of a frame; None: one message a frame
        self.terminator = separator if terminate and separator else ""  # appended to each send

    def with_split(self, separator: str | None, terminate: bool = False) -> ConnectionFraming:
        """This framing, splitting frames by `separator` (raw text only; ConversationError for a protocol's)."""
        if type(self) is not ConnectionFraming:
            raise ConversationError("split is for raw WebSocket text, not a protocol's own framing")
        return ConnectionFraming(separator, terminate)

    def outgoing(self, step: Step, variables: Variables) -> tuple[Frame, ...]:
        """The frames that start `step` (none for a pure expect)."""
        if step.action == SEND:
            return (as_text(step.resolved(variables)) + self.terminator,)
        if step.action == SEND_BINARY:
            return (binary_bytes(step.value),)
        return NO_FRAMES

    def expectation(self, step: Step, variables: Variables) -> Expectation | None:
        """What `step` waits for, or None when it only sends."""
        if step.action == EXPECT_TEXT:
            return text_expectation(step.resolved(variables))
        if step.action == EXPECT:
            return json_expectation(step.resolved(variables))
        if step.action == EXPECT_REGEX:
            return regex_expectation(step.regex(variables))
        if step.action == EXPECT_BINARY:
            return binary_expectation(hex_prefix(step.value))
        return None

    def receive(self, text: str) -> tuple[tuple[Frame, ...], tuple[Message, ...]]:
        """Decode one text frame: frames to send back at once (protocol pongs), and application messages."""
        if self.separator is None:
            return NO_FRAMES, (Message(text),)
        return NO_FRAMES, tuple(Message(part) for part in split_messages(text, self.separator))

    def receive_binary(self, data: bytes) -> tuple[tuple[Frame, ...], tuple[Message, ...]]:
        """Decode one binary frame: bytes that are not UTF-8 are one binary message (text expects skip it).

        UTF-8 bytes are read as a text frame too (nats-server sends its text protocol in binary
        frames); unsplit raw keeps the bytes on the message, for binary expects.
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return NO_FRAMES, (Message("", BINARY_KIND, data=data),)
        if self.separator is None and type(self) is ConnectionFraming:
            return NO_FRAMES, (Message(text, data=data),)
        return self.receive(text)

    # Whether the framing has frames due by time alone (`tick`); False spares the I/O layer the asking.
    timed = False

    def tick(self, now_s: float) -> tuple[Frame, ...]:
        """Frames due by time alone at `now_s` (perf_counter seconds; MQTT's PINGREQ); may set `ended`."""
        return NO_FRAMES

    def next_tick_s(self) -> float | None:
        """When `tick` next has something to do (perf_counter seconds), or None: never by time alone."""
        return None

    def goodbye(self) -> tuple[Frame, ...]:
        """Frames to send before the close frame of a clean disconnect."""
        return NO_FRAMES

    # Whether a clean disconnect ends the session on purpose, so that the next one does not
    # resume it (Socket.IO's namespace DISCONNECT); raw protocols resume as their files say.
    goodbye_ends_session = False

    def close_names(self) -> Mapping[int, str]:
        """Names of the protocol's own close codes (GraphQL's 44xx)."""
        return {}


class WireProtocol:
    """A protocol for a whole run: its actions, settings and subprotocols; raw WebSocket text here."""

    name = "raw"
    actions: Mapping[str, frozenset[str]] = RAW_ACTIONS  # step action -> its option keys
    settings_keys: frozenset[str] = frozenset()  # top-level keys of a conversation file it reads
    auth_places: tuple[str, ...] = ()  # where else than header/query it can carry the token ("payload")
    _shared = ConnectionFraming()

    def __init__(self, conversation: Conversation, auth_in_payload: bool = False) -> None:
        self.conversation = conversation  # the steps and settings
        self.auth_in_payload = auth_in_payload  # the token goes in the protocol's own auth payload
        if conversation.split is not None:  # raw text split by a separator: still one framing for all
            self._shared = ConnectionFraming(conversation.split, conversation.terminate)

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols to offer: the conversation's, then the protocol's own."""
        return self.conversation.subprotocols

    def url(self, base_url: str) -> str:
        """The URL to connect to for `base_url` (--host)."""
        return base_url

    @property
    def resumes(self) -> bool:
        """Whether a user's reconnects try to resume its session before (the file's `resume: true`)."""
        return self.conversation.resume

    def opening(self) -> tuple[Step, ...]:
        """The protocol's own open steps, before the conversation's (Socket.IO's namespace connect)."""
        return ()

    def connection(self, carry: UserCarry | None = None) -> ConnectionFraming:
        """The framing state of a new connection; `carry` is its user's state across reconnects, if any."""
        return self._shared

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Raise ConversationError (naming the key, not the place) when the protocol's settings are bad."""

    @classmethod
    def check_step(cls, step: Step) -> None:
        """Raise ConversationError (what is wrong, not the place) when a step is bad for this protocol."""

    @classmethod
    def check_across_workers(cls, settings: Mapping[str, Any]) -> None:
        """Raise ConversationError when the settings would make two users of different Locust workers one.

        Each worker numbers its users from 0: a name made of `${user}` alone is the same on
        every worker. Only MQTT's client id is such a name here.
        """

    @classmethod
    def validate(cls, conversation: Conversation) -> None:
        """What parse_conversation cannot check alone; ConversationError naming the source, part and step."""
        if conversation.split is not None and cls.name != "raw":
            raise ConversationError(f"{conversation.source}: split: is for raw WebSocket text, not {cls.name}")
        try:
            cls.check_settings(conversation.settings)
        except ConversationError as error:
            raise ConversationError(f"{conversation.source}: {error}") from None
        for part in PARTS:
            for index, step in enumerate(conversation.part(part), 1):
                try:
                    cls.check_step(step)
                except ConversationError as error:
                    raise ConversationError(f"{conversation.source}: {part} step {index}: {error}") from None
        for index, step in enumerate(conversation.feed.steps if conversation.feed is not None else (), 1):
            try:
                cls.check_step(step)
            except ConversationError as error:
                raise ConversationError(f"{conversation.source}: feed step {index}: {error}") from None


def check_payload_setting(settings: Mapping[str, Any], key: str, what: str) -> None:
    """The auth payload setting `key`, when the file gives it: a mapping whose ${...} are known variables.

    `what` says in the error what the mapping is (`the CONNECT packet's auth payload`).
    """
    if key not in settings:
        return
    payload = settings[key]
    if not isinstance(payload, Mapping):
        raise ConversationError(f"{key}: must be a mapping ({what})")
    unknown = unknown_variables(payload)
    if unknown:
        raise ConversationError(f"{key}: unknown variable ${{{unknown[0]}}}")


def payload_with_token(
    setting: Mapping[str, Any] | None, variables: Variables, with_token: bool
) -> dict[str, Any] | None:
    """A protocol's auth payload (Socket.IO's CONNECT auth, GraphQL's connection_init payload).

    The file's setting, substituted, plus `token` when the token goes in the payload
    (--ws-auth-in payload) and the setting does not name it already; None when there is neither.
    """
    payload: dict[str, Any] | None = dict(substitute(setting, variables)) if setting is not None else None
    if with_token:
        payload = payload if payload is not None else {}
        payload.setdefault("token", variables.token)
    return payload


PROTOCOL_NAMES = ("raw", "socketio", "graphql-ws", "mqtt")


def protocol_class(name: str) -> type[WireProtocol]:
    """The protocol called `name`; ConversationError for an unknown one."""
    if name == "raw":
        return WireProtocol
    if name == "socketio":
        from scenarios.protocols.socketio import SocketIOProtocol

        return SocketIOProtocol
    if name == "graphql-ws":
        from scenarios.protocols.graphql_ws import GraphQLWSProtocol

        return GraphQLWSProtocol
    if name == "mqtt":
        from scenarios.protocols.mqtt_conversation import MqttProtocol

        return MqttProtocol
    raise ConversationError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOL_NAMES)}")


def load_conversation_text(text: str, source: str, protocol: str | None = None) -> Conversation:
    """Parse a conversation file's text (YAML, so JSON too); `protocol` (--ws-protocol) when the file names none.

    ConversationError, one line naming `source`, for anything wrong.
    """
    import yaml

    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ConversationError(f"{source}: YAML syntax error{where}: {problem}") from None
    name = protocol or "raw"
    if isinstance(data, Mapping) and "protocol" in data:
        if not isinstance(data["protocol"], str):
            raise ConversationError(f"{source}: protocol: must be one of {', '.join(PROTOCOL_NAMES)}")
        name = data["protocol"]
    try:
        cls = protocol_class(name)
    except ConversationError as error:
        raise ConversationError(f"{source}: {error}") from None
    conversation = parse_conversation(data, source, cls.actions, cls.settings_keys, protocol=name)
    cls.validate(conversation)
    return conversation


def load_conversation(path: str, protocol: str | None = None) -> Conversation:
    """Read and parse a conversation file; ConversationError naming the file when it cannot be read or is bad."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise ConversationError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConversationError(f"{path}: not UTF-8 text") from None
    return load_conversation_text(text, path, protocol)


def check_across_workers(conversation: Conversation) -> None:
    """ConversationError, naming what, when the run has Locust workers and the file names users by `${user}` alone.

    Each worker numbers its users from 0, so such a name is the same for the same number on
    every worker: a feed step's `${target}` (every worker's feeder would feed every worker's
    user of that number) or an MQTT client id (the broker would drop one of the two users).
    """
    if conversation.feed is not None:
        conversation.feed.check_across_workers()
    protocol_class(conversation.protocol).check_across_workers(conversation.settings)


def make_protocol(conversation: Conversation, auth_in_payload: bool = False) -> WireProtocol:
    """The protocol object of a run."""
    return protocol_class(conversation.protocol)(conversation, auth_in_payload)


__all__ = [
    "BINARY_KIND",
    "CLOSE_CODE_NAMES",
    "EXPECT",
    "EXPECT_BINARY",
    "EXPECT_REGEX",
    "EXPECT_TEXT",
    "NO_FRAMES",
    "PROTOCOL_NAMES",
    "SEND",
    "SEND_BINARY",
    "ConnectionFraming",
    "Frame",
    "WireProtocol",
    "check_across_workers",
    "describe_close_code",
    "load_conversation",
    "load_conversation_text",
    "make_protocol",
    "protocol_class",
]
