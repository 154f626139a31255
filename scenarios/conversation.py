"""Conversations: what a connection says after each (re)connect, as pure data and pure logic.

A conversation has three parts of steps: `open` runs after the handshake (a session is
established when every open step passed), `hold` runs during each hold, `close` runs
before a clean disconnect. A step sends (`send`) or waits for the first matching
message (`expect`: a JSON subset; `expect_text`: exact text; `expect_regex`); a protocol
(`scenarios.protocols`) may add its own actions (Socket.IO's `emit`, GraphQL's `subscribe`).

Sans-I/O, as websockets' protocol objects: no sockets, gevent or Locust. Matching,
substitution of `${user}`, `${cycle}` and `${token}`, and the loading of a conversation
file (YAML; JSON is YAML too) are here; `scenarios.exchange` moves the frames.

The primitives text protocols need are pure too: `split` (several messages in one frame),
`reply` rules (answers to application pings, for the whole session), a client `heartbeat`
schedule, and `capture` (a value of a matched message, `${name}` in later steps; `${ref}`
counts the connection's sends).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenarios.feed import FeedSpec
    from scenarios.stream import StreamSpec

PARTS = ("open", "hold", "close")
SEND = "send"
EXPECT = "expect"
EXPECT_TEXT = "expect_text"
EXPECT_REGEX = "expect_regex"
SEND_BINARY = "send_binary"  # a binary frame: {hex: "0a0b"} or {base64: "Cgs="}
EXPECT_BINARY = "expect_binary"  # the first binary message starting with these bytes (hex)
RAW_ACTIONS: Mapping[str, frozenset[str]] = {  # action -> the keys it takes besides name and timeout_ms
    SEND: frozenset(),
    EXPECT: frozenset(),
    EXPECT_TEXT: frozenset(),
    EXPECT_REGEX: frozenset(),
    SEND_BINARY: frozenset(),
    EXPECT_BINARY: frozenset(),
}
BINARY_ENCODINGS = ("hex", "base64")  # how a send_binary says its bytes
BINARY_KIND = "binary"  # the kind of a raw binary message whose bytes are not UTF-8 text
CAPTURE = "capture"  # a step key: {name: dot.path} into the matched message
COMMON_STEP_KEYS = frozenset(("name", "timeout_ms", CAPTURE))
SESSION_KEYS = ("split", "terminate", "reply", "heartbeat")  # top-level keys of the session's primitives
TOP_LEVEL_KEYS = frozenset(("protocol", "subprotocols", "headers", "stream", "resume", "feed", *SESSION_KEYS, *PARTS))
VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NOT_BUILT_IN = re.compile(r"\$\{(?!(?:user|worker|cycle|token|stream\.last)\})")  # a ${name} the plain replaces miss
STREAM_LAST = "${stream.last}"  # the user's stream's last number, carried across reconnects ("" before any)
VARIABLES = ("user", "worker", "cycle", "token", "stream.last")
REF = "ref"  # ${ref}: the number of the connection's latest send (1, 2, ...)
CAPTURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_HEARTBEAT_MS = 10  # a client heartbeat more often than this is a mistake, not a protocol
ECHO_TEXT = "flap ${user}:${cycle}"  # the default conversation's message


class ConversationError(ValueError):
    """A bad conversation: the message is the one line the user sees (file, part, step, what)."""


@dataclass(frozen=True, slots=True)
class Variables:
    """What `${...}` in a step's strings stands for, per connection."""

    user: int = 0  # the user's number in its process
    worker: int = 0  # the Locust worker's index (0 without workers): ${worker}-${user} is unique in a run
    cycle: int = 0  # the cycle's index
    token: str = field(default="", repr=False)  # the auth token: a secret, never shown
    # The connection's own values, as text: captures by name and "ref" (its latest send's number).
    # The one mutable part: a Talk fills it as its connection goes on.
    values: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    carry: Any = field(default=None, repr=False, compare=False)  # the user's UserCarry: ${stream.last}, read live

    @property
    def stream_last(self) -> str:
        """`${stream.last}`: the last number of the user's stream in its current chain, "" before any."""
        last = getattr(self.carry, "last", None)
        return "" if last is None else str(last)


def _has_variables(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_variables(k) or _has_variables(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_variables(v) for v in value)
    return False


def _variable_text(variables: Variables, name: str) -> str | None:
    if name == "user":
        return str(variables.user)
    if name == "worker":
        return str(variables.worker)
    if name == "cycle":
        return str(variables.cycle)
    if name == "token":
        return variables.token
    if name == "stream.last":
        return variables.stream_last
    return variables.values.get(name)


def _substitute_once(text: str, variables: Variables, escape: Callable[[str], str] = str) -> str:
    """Every `${name}` replaced in one pass (a value holding `${...}` stays as it is); unknown names stay."""

    def value_of(match: re.Match[str]) -> str:
        found = _variable_text(variables, match.group(1))
        return match.group(0) if found is None else escape(found)

    return VARIABLE.sub(value_of, text)


def substitute(value: Any, variables: Variables) -> Any:
    """`value` with `${user}`, `${cycle}`, `${token}`, `${ref}` and captures replaced in every string, recursively."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        if variables.values and _NOT_BUILT_IN.search(value):
            return _substitute_once(value, variables)  # captures or ${ref}: one pass over every name
        # Plain replaces (C loops; this runs per step per cycle). The token goes last, so a
        # token holding "${user}" stays as it is; unknown names were refused by make_step.
        if STREAM_LAST in value:
            value = value.replace(STREAM_LAST, variables.stream_last)
        if "${worker}" in value:
            value = value.replace("${worker}", str(variables.worker))
        return (
            value.replace("${user}", str(variables.user))
            .replace("${cycle}", str(variables.cycle))
            .replace("${token}", variables.token)
        )
    if isinstance(value, Mapping):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [substitute(v, variables) for v in value]
    return value


def regex_text(pattern: str, variables: Variables) -> str:
    """An expect_regex pattern with its variables replaced by their values, escaped (literal text).

    The token is never put in a pattern; a name with no value yet (a capture, when the pattern
    is first compiled) stands for nothing.
    """
    if "${" not in pattern:
        return pattern

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        found = None if name == "token" else _variable_text(variables, name)
        return "" if found is None else re.escape(found)

    return VARIABLE.sub(value_of, pattern)


def variable_names(value: Any) -> list[str]:
    """Every name in `${...}` in `value`'s strings (keys and values, nested), in order."""
    if isinstance(value, str):
        return VARIABLE.findall(value)
    if isinstance(value, Mapping):
        return [name for k, v in value.items() for name in variable_names(k) + variable_names(v)]
    if isinstance(value, (list, tuple)):
        return [name for v in value for name in variable_names(v)]
    return []


def unknown_variables(value: Any, known: Iterable[str] = ()) -> list[str]:
    """The names in `${...}` that are not variables of a conversation (nor in `known`: captures)."""
    return [name for name in variable_names(value) if name not in VARIABLES and name != REF and name not in known]


def number_without_worker(value: Any, number: str = "user") -> bool:
    """Whether `value` names a user's number (`${user}`, a feed's `${target}`) but not `${worker}`.

    Each Locust worker numbers its users from 0: such a value is the same for the same number
    on every worker, so two workers' users would share it.
    """
    names = variable_names(value)
    return number in names and "worker" not in names


def json_in_string(value: Any) -> Any:
    """A string that holds a JSON object or array, decoded (Pusher's `data`, ActionCable's `identifier`); else None."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def contains(expected: Any, actual: Any) -> bool:
    """Whether `actual` (decoded JSON) contains `expected`: mappings by subset, recursively.

    A mapping matches a mapping that has each of its keys with a matching value, or a
    string holding such a mapping as JSON text (decoded); a list matches a list of the same
    length, element by element; anything else must be equal (and of the same kind: `true`
    is not `1`).
    """
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            decoded = json_in_string(actual)
            return isinstance(decoded, Mapping) and contains(expected, decoded)
        return all(key in actual and contains(value, actual[key]) for key, value in expected.items())
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return False
        return all(contains(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def compact_json(value: Any) -> str:
    """JSON text without spaces, as the protocols put it in frames."""
    return json.dumps(value, separators=(",", ":"))


def as_text(value: Any) -> str:
    """What a `send` puts in a text frame: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else compact_json(value)


def binary_bytes(value: Any) -> bytes:
    """The bytes of a `send_binary` value, `{hex: "0a0b"}` or `{base64: "Cgs="}`; ConversationError when bad."""
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in BINARY_ENCODINGS:
        raise ConversationError("send_binary takes {hex: ...} or {base64: ...}")
    encoding, text = next(iter(value.items()))
    if not isinstance(text, str):
        raise ConversationError(f"send_binary {encoding}: must be a string")
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ConversationError(f"send_binary: not valid {encoding}") from None


def hex_prefix(value: Any) -> bytes:
    """The bytes of an `expect_binary` prefix (hex, spaces allowed); ConversationError when bad."""
    if not isinstance(value, str):
        raise ConversationError("expect_binary takes hex digits in a string (quote them)")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConversationError("expect_binary: not valid hex") from None


_NOT_DECODED = object()


class Message:
    """One application message from the server, as a protocol decoded it.

    `text` is its payload as text (for raw WebSocket: the whole frame); `kind` and `key`
    are the protocol's (Socket.IO: "event" and the event name; GraphQL: "next" and the
    operation id; raw: "message"). `args` holds a Socket.IO event's or ack's arguments.
    A raw binary frame is a message whose `data` holds its bytes: its `text` is their UTF-8
    decoding, or, when they are not UTF-8, empty, with `kind` BINARY_KIND (only binary
    expectations look at it then).
    """

    __slots__ = ("text", "kind", "key", "args", "data", "_json")

    def __init__(
        self, text: str, kind: str = "message", key: Any = None, args: Any = None, data: bytes | None = None
    ) -> None:
        self.text = text  # the payload as text
        self.kind = kind  # what sort of message, in the protocol's words
        self.key = key  # event name, ack id or operation id, when the protocol has one
        self.args = args  # decoded arguments (Socket.IO), when the protocol has them
        self.data = data  # a raw binary frame's bytes; None for text
        self._json: Any = _NOT_DECODED  # decoded once, on first use

    @property
    def size(self) -> int:
        """The payload's length, for the row's response length."""
        return len(self.text) if self.data is None else len(self.data)

    def json(self) -> Any:
        """The payload decoded as JSON; ValueError when it is not JSON."""
        if self._json is _NOT_DECODED:
            self._json = json.loads(self.text)
        return self._json

    def is_json(self) -> bool:
        """Whether the payload is JSON."""
        try:
            self.json()
        except ValueError:
            return False
        return True


# What an expectation says of one message: the awaited one, not it, or the step failed (a reason).
MATCHED = True
NOT_IT = False
MatchResult = bool | str


class Expectation:
    """What an expect step waits for; `check` says whether a message is it.

    Returns MATCHED, NOT_IT, or a short stable failure reason (a protocol error answer).
    `skipped_not_json` counts skipped messages that were not JSON, for the timeout's reason.
    `after` are frames to send once it matched (GraphQL completes its operation).
    A text expectation skips raw binary messages that are not UTF-8 text, a `binary` one
    every message that did not come in a binary frame.
    """

    __slots__ = ("predicate", "after", "binary", "skipped", "skipped_not_json", "matched")

    def __init__(
        self, predicate: Callable[[Message], MatchResult], after: tuple[str | bytes, ...] = (), binary: bool = False
    ) -> None:
        self.predicate = predicate  # the protocol's or the step's test of a message
        self.after = after  # frames to send once matched
        self.binary = binary  # waits for a raw binary message (else a text one)
        self.skipped = 0  # messages that were not it
        self.skipped_not_json = 0  # ... of which were not JSON
        self.matched: Message | None = None  # the message that matched

    def check(self, message: Message) -> MatchResult:
        """Test one message; remembers a match and counts what was skipped."""
        data = message.data
        if data is None if self.binary else data is not None and message.kind == BINARY_KIND:
            self.skipped += 1  # bytes (not text) never break a text expectation, nor text a binary one
            return NOT_IT
        result = self.predicate(message)
        if result is MATCHED:
            self.matched = message
        elif result is NOT_IT:
            self.skipped += 1
        return result

    def timeout_reason(self) -> str:
        """Why the step timed out, in stable words (never the payloads)."""
        if not self.skipped:
            return "expect timed out"
        if self.skipped_not_json == self.skipped:
            return "expect timed out: not JSON"
        return "expect timed out: no message matched"


def json_expectation(expected: Any) -> Expectation:
    """Wait for the first JSON message containing `expected` (see `contains`)."""
    expectation: Expectation

    def test(message: Message) -> MatchResult:
        try:
            data = message.json()
        except ValueError:
            expectation.skipped_not_json += 1
            return NOT_IT
        return contains(expected, data)

    expectation = Expectation(test)
    return expectation


def text_expectation(expected: str) -> Expectation:
    """Wait for the first message whose text is exactly `expected`."""
    return Expectation(lambda message: message.text == expected)


def regex_expectation(pattern: re.Pattern[str]) -> Expectation:
    """Wait for the first message whose text the pattern finds a match in."""
    return Expectation(lambda message: pattern.search(message.text) is not None)


def binary_expectation(prefix: bytes) -> Expectation:
    """Wait for the first binary message whose bytes start with `prefix`."""
    return Expectation(lambda message: message.data is not None and message.data.startswith(prefix), binary=True)


# --- captures: a value of a matched message, for later steps ---------------------------------


@dataclass(frozen=True, slots=True)
class Capture:
    """`${name}` in later steps of the connection: the value at a dot path in the matched message.

    Path segments name keys of objects, or index arrays (`4.response.id` in a Phoenix
    array); a string holding JSON on the way is decoded (Pusher's `data.socket_id`).
    """

    name: str  # the variable it sets
    path: tuple[str, ...]  # the dot path's segments
    text: str  # the path as written, for messages
    persist: bool = False  # the value survives the user's reconnects ("" until first captured)


def persisted_capture_names(data: Mapping[str, Any]) -> list[str]:
    """The names a conversation's steps capture with `persist: true`: known to every step, "" until captured."""
    names = []
    for part in PARTS:
        steps = data.get(part)
        for item in steps if isinstance(steps, list) else ():
            captures = item.get(CAPTURE) if isinstance(item, Mapping) else None
            if isinstance(captures, Mapping):
                names += [name for name, v in captures.items() if isinstance(v, Mapping) and v.get("persist") is True]
    return names


def parse_captures(value: Any) -> tuple[Capture, ...]:
    """A step's `capture:` mapping (name: dot.path, or name: {path: dot.path, persist: true}); ConversationError."""
    if not isinstance(value, Mapping) or not value:
        raise ConversationError("capture must be a mapping of name: dot.path")
    captures = []
    for name, path in value.items():
        if not isinstance(name, str) or not CAPTURE_NAME.match(name):
            raise ConversationError(f"capture: {name!r} is not a name (letters, digits, _)")
        if name in VARIABLES or name == REF:
            raise ConversationError(f"capture: {name} is a built-in variable")
        persist = False
        if isinstance(path, Mapping):
            extra = [key for key in path if key not in ("path", "persist")]
            if extra:
                raise ConversationError(f"capture {name}: unknown key {extra[0]!r} (path, persist)")
            persist = path.get("persist", False)
            if not isinstance(persist, bool):
                raise ConversationError(f"capture {name}: persist: must be true or false")
            path = path.get("path")
        if isinstance(path, int) and not isinstance(path, bool):
            path = str(path)
        if not isinstance(path, str) or not all(segment.strip() for segment in path.split(".")):
            raise ConversationError(f"capture {name}: the path must be a dot path such as data.socket_id")
        captures.append(Capture(name, tuple(segment.strip() for segment in path.split(".")), path, persist))
    return tuple(captures)


_MISSING = object()
MISSING = _MISSING  # what follow_path returns when there is no value at the path


def follow_path(data: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` in decoded JSON, decoding strings that hold JSON on the way; _MISSING when none."""
    for segment in path:
        if isinstance(data, str):
            decoded = json_in_string(data)
            data = decoded if decoded is not None else data
        if isinstance(data, Mapping):
            if segment not in data:
                return _MISSING
            data = data[segment]
        elif isinstance(data, list) and segment.isdigit() and int(segment) < len(data):
            data = data[int(segment)]
        else:
            return _MISSING
    return data


def capture_values(captures: tuple[Capture, ...], message: Message) -> dict[str, str] | str:
    """The captured values (as text: strings as they are, the rest as JSON), or why they are not there.

    The reason names the capture and its path, never the message.
    """
    try:
        data = message.json()
    except ValueError:
        return f"capture {captures[0].name}: the message is not JSON"
    values = {}
    for capture in captures:
        found = follow_path(data, capture.path)
        if found is _MISSING:
            return f"capture {capture.name}: no {capture.text} in the message"
        values[capture.name] = found if isinstance(found, str) else compact_json(found)
    return values


def capture_can_match(expected: Any, path: tuple[str, ...]) -> bool:
    """Whether a message matching the JSON subset `expected` can hold `path` (False: it pins a value on the way)."""
    for segment in path:
        if isinstance(expected, str):
            decoded = json_in_string(expected)
            if decoded is None:
                return False
            expected = decoded
        if isinstance(expected, Mapping):
            if segment not in expected:
                return True  # the subset leaves it open
            expected = expected[segment]
        elif isinstance(expected, list):
            if not segment.isdigit() or int(segment) >= len(expected):
                return False
            expected = expected[int(segment)]
        else:
            return False
    return True


def _check_captures(action: str, value: Any, captures: tuple[Capture, ...]) -> None:
    if action == SEND:
        raise ConversationError("capture needs a step that waits for a message (expect, expect_text, ...)")
    if action == EXPECT_TEXT and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConversationError(f"capture {captures[0].name}: expect_text here is not JSON") from None
    if action in (EXPECT, EXPECT_TEXT):
        for capture in captures:
            if not capture_can_match(value, capture.path):
                raise ConversationError(
                    f"capture {capture.name}: {capture.text} can never match (the expect pins a value on its way)"
                )


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a conversation.

    `value` is the action's argument (strings may hold `${...}`); `options` are the
    action's other keys (Socket.IO's `ack`, GraphQL's `variables`), as given.
    """

    action: str  # send, expect, expect_text, expect_regex, or a protocol's own action
    value: Any  # the argument of the action, before substitution
    name: str  # the Locust row of this step
    timeout_ms: float | None = None  # how long an expect may wait; None: --ws-timeout-s
    options: Mapping[str, Any] = field(default_factory=dict)  # the action's other keys
    templated: bool = False  # whether value or options hold `${...}` (else substitution is skipped)
    pattern: re.Pattern[str] | None = None  # expect_regex: the compiled pattern
    captures: tuple[Capture, ...] = ()  # values the matched message gives later steps

    def resolved(self, variables: Variables) -> Any:
        """The value with the variables substituted."""
        return substitute(self.value, variables) if self.templated else self.value

    def regex(self, variables: Variables) -> re.Pattern[str]:
        """expect_regex: the pattern for one connection, `${user}` and `${cycle}` matched as literal text."""
        assert self.pattern is not None, "regex() of a step that is not expect_regex"
        if not self.templated:
            return self.pattern
        return re.compile(regex_text(self.value, variables))  # re caches recent patterns

    def option(self, key: str, variables: Variables, default: Any = None) -> Any:
        """One of the options, substituted."""
        value = self.options.get(key, default)
        return substitute(value, variables) if self.templated else value


def make_step(
    action: str,
    value: Any,
    name: str,
    timeout_ms: float | None = None,
    options: Mapping[str, Any] | None = None,
    capture: Mapping[str, Any] | None = None,
    known: Iterable[str] = (),
) -> Step:
    """A step, with its template flag and (expect_regex) compiled pattern; ConversationError when bad.

    `capture` is the step's `capture:` mapping; `known` are the names earlier steps capture.
    """
    options = dict(options or {})
    unknown = unknown_variables(value, known) + unknown_variables(options, known)
    if unknown:
        builtins = ", ".join("${" + v + "}" for v in (*VARIABLES, REF))
        raise ConversationError(
            f"unknown variable ${{{unknown[0]}}}; use {builtins} or a name an earlier step captures"
        )
    captures = parse_captures(capture) if capture is not None else ()
    if captures:
        _check_captures(action, value, captures)
    if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float))):
        raise ConversationError("timeout_ms must be a number")
    if timeout_ms is not None and timeout_ms <= 0:
        raise ConversationError("timeout_ms must be > 0")
    pattern = None
    if action == EXPECT_REGEX:
        if not isinstance(value, str):
            raise ConversationError("expect_regex takes a string")
        if "${token}" in value:
            raise ConversationError("expect_regex can hold ${user}, ${cycle} and captures, not ${token}")
        try:
            # Compiled with sample values: the per-connection pattern differs only in literal text.
            pattern = re.compile(regex_text(value, Variables()))
        except re.error as error:
            raise ConversationError(f"expect_regex does not compile: {error}") from None
    if action == EXPECT_TEXT and not isinstance(value, str):
        raise ConversationError("expect_text takes a string")
    if action == SEND_BINARY:
        binary_bytes(value)
    if action == EXPECT_BINARY:
        hex_prefix(value)
    if action == EXPECT and not isinstance(value, (Mapping, list)):
        raise ConversationError("expect takes a mapping or a list (a JSON subset); use expect_text for text")
    return Step(
        action=action,
        value=value,
        name=name,
        timeout_ms=float(timeout_ms) if timeout_ms is not None else None,
        options=options,
        templated=_has_variables(value) or _has_variables(options),
        pattern=pattern,
        captures=captures,
    )


# --- the session's primitives: split, reply rules, heartbeat -------------------------------------


def split_messages(text: str, separator: str) -> list[str]:
    """The messages of one frame that carries several, each ended or separated by `separator` (empty ones dropped)."""
    return [part for part in text.split(separator) if part]


WHEN_KEYS = ("when", "when_text", "when_regex")


@dataclass(frozen=True, slots=True)
class ReplyRule:
    """An answer for the whole session: every message that `when` matches is answered with `send`.

    The message answered is the protocol's ping, so no expect step sees it.
    """

    when: str  # when (a JSON subset), when_text (exact text) or when_regex
    expected: Any  # the subset, the text, or the pattern's text
    send: Step  # the answer, a send step (its value may hold variables)
    pattern: re.Pattern[str] | None = None  # when_regex: compiled

    def matches(self, message: Message) -> bool:
        """Whether `message` is one this rule answers (binary frames that are not UTF-8 text never are)."""
        if message.kind == BINARY_KIND and message.data is not None:
            return False
        if self.when == "when_text":
            return message.text == self.expected
        if self.pattern is not None:
            return self.pattern.search(message.text) is not None
        try:
            return contains(self.expected, message.json())
        except ValueError:
            return False


def reply_rule(
    send: Any,
    when: Any = None,
    when_text: str | None = None,
    when_regex: str | None = None,
    known: Iterable[str] | None = None,
) -> ReplyRule:
    """A reply rule with one of `when`, `when_text`, `when_regex`; ConversationError when bad.

    `known`: the capture names its send may use (None: any, as a Python script captures as it goes).
    """
    given = [
        (key, value) for key, value in zip(WHEN_KEYS, (when, when_text, when_regex), strict=True) if value is not None
    ]
    if len(given) != 1:
        raise ConversationError("a reply rule takes one of when, when_text, when_regex, and send")
    key, expected = given[0]
    if _has_variables(expected):
        raise ConversationError(f"{key} takes no ${{variables}}")
    pattern = None
    if key == "when" and not isinstance(expected, (Mapping, list)):
        raise ConversationError("when takes a mapping or a list (a JSON subset); use when_text for text")
    if key == "when" and isinstance(expected, Mapping) and not expected:
        raise ConversationError("when: {} would answer every JSON object; for an empty object use when_text: '{}'")
    if key != "when" and not isinstance(expected, str):
        raise ConversationError(f"{key} takes a string")
    if key == "when_regex":
        try:
            pattern = re.compile(expected)
        except re.error as error:
            raise ConversationError(f"when_regex does not compile: {error}") from None
    if send is None:
        raise ConversationError("a reply rule needs send")
    return ReplyRule(
        key, expected, make_step(SEND, send, "reply", known=_ANY_CAPTURE if known is None else known), pattern
    )


class _AnyName:
    """Known names for the sends of reply rules and heartbeats: any capture (they may come before it)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and CAPTURE_NAME.match(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(())


_ANY_CAPTURE = _AnyName()


def answer(rules: tuple[ReplyRule, ...], messages: tuple[Message, ...]) -> tuple[list[Step], tuple[Message, ...]]:
    """The reply rules applied to a frame's messages: the sends they make, and the messages left for the steps."""
    sends: list[Step] = []
    left: list[Message] = []
    for message in messages:
        rule = next((rule for rule in rules if rule.matches(message)), None)
        if rule is None:
            left.append(message)
        else:
            sends.append(rule.send)
    return sends, tuple(left) if sends else messages


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A client heartbeat: `send` every `every_ms`, during holds and steady users' sessions of any length."""

    every_ms: float  # the period
    send: Step  # what it sends (a send step)


def heartbeat(every_ms: Any, send: Any, known: Iterable[str] | None = None) -> Heartbeat:
    """A heartbeat; ConversationError when the period is not a number of at least MIN_HEARTBEAT_MS.

    `known`: the capture names its send may use (None: any).
    """
    if isinstance(every_ms, bool) or not isinstance(every_ms, (int, float)):
        raise ConversationError("heartbeat every_ms must be a number")
    if every_ms < MIN_HEARTBEAT_MS:
        raise ConversationError(f"heartbeat every_ms must be >= {MIN_HEARTBEAT_MS} (got {every_ms:g})")
    if send is None:
        raise ConversationError("heartbeat needs send")
    step = make_step(SEND, send, "heartbeat", known=_ANY_CAPTURE if known is None else known)
    return Heartbeat(float(every_ms), step)


class HeartbeatSchedule:
    """When the next heartbeat is due, on the caller's clock (seconds): pure, the clock injected.

    A late reader (a long step) sends one heartbeat, not a burst: the next is due a period later.
    """

    __slots__ = ("every_s", "due")

    def __init__(self, every_ms: float, now: float) -> None:
        self.every_s = every_ms / 1000.0  # the period
        self.due = now + self.every_s  # when the next one goes out

    def take(self, now: float) -> bool:
        """Whether a heartbeat is due at `now`; if so it counts as sent and the next is scheduled."""
        if now < self.due:
            return False
        self.due += self.every_s
        if self.due <= now:
            self.due = now + self.every_s
        return True


@dataclass(frozen=True)
class Conversation:
    """What every connection of a run says: its handshake extras and its three parts of steps."""

    protocol: str = "raw"  # the framing: raw, socketio or graphql-ws (scenarios.protocols)
    subprotocols: tuple[str, ...] = ()  # offered in the handshake, besides the protocol's own
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # extra handshake headers (values secret)
    open: tuple[Step, ...] = ()  # after the handshake; all must pass for an established session
    hold: tuple[Step, ...] = ()  # during each hold
    close: tuple[Step, ...] = ()  # before a clean disconnect
    settings: Mapping[str, Any] = field(default_factory=dict)  # the protocol's own top-level keys (path, namespace)
    source: str = "built-in"  # where it came from, for messages: a file name, or "built-in"
    split: str | None = None  # a frame carries several messages separated by this; None: one message a frame
    terminate: bool = False  # each send ends with `split`
    replies: tuple[ReplyRule, ...] = ()  # answers to the server's application pings, for the whole session
    heartbeat: Heartbeat | None = None  # the client's own heartbeat, during holds
    stream: StreamSpec | None = None  # the pushes that form each user's ordered stream (scenarios.stream)
    resume: bool = False  # reconnects resume the session before (Socket.IO's pid and offset; raw: ${stream.last})
    feed: FeedSpec | None = None  # what the pack's feeder sends each active user (scenarios.feed)

    def part(self, name: str) -> tuple[Step, ...]:
        """The steps of one part."""
        steps: tuple[Step, ...] = getattr(self, name)
        return steps

    @property
    def persisted(self) -> tuple[str, ...]:
        """The names captured with `persist: true`: a user keeps them across its reconnects."""
        return tuple(
            dict.fromkeys(c.name for part in PARTS for step in self.part(part) for c in step.captures if c.persist)
        )


def echo_conversation(echo: bool = True) -> Conversation:
    """The default conversation: during each hold, send a text and expect it back (the `echo` row)."""
    if not echo:
        return Conversation(source="built-in (no echo)")
    return Conversation(
        hold=(make_step(SEND, ECHO_TEXT, "hold-1"), make_step(EXPECT_TEXT, ECHO_TEXT, "echo")),
        source="built-in echo",
    )


# --- loading a conversation file -----------------------------------------------------------------


def parse_conversation(
    data: Any,
    source: str,
    actions: Mapping[str, frozenset[str]],
    settings_keys: frozenset[str] = frozenset(),
    protocol: str = "raw",
) -> Conversation:
    """Build a conversation from decoded YAML, for a protocol with these step `actions` and top-level keys.

    ConversationError with one line naming `source`, the part and the step when it is bad.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConversationError(f"{source}: must be a mapping with keys {', '.join(sorted(TOP_LEVEL_KEYS))}")
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS | settings_keys]
    if unknown:
        allowed = ", ".join(sorted(TOP_LEVEL_KEYS | settings_keys))
        raise ConversationError(f"{source}: unknown key {unknown[0]!r} (allowed: {allowed})")
    parts: dict[str, tuple[Step, ...]] = {}
    # Names captured so far, in the order the steps run; persisted ones are known from the start.
    captured: list[str] = persisted_capture_names(data)
    for part in PARTS:
        steps = data.get(part) or []
        if not isinstance(steps, list):
            raise ConversationError(f"{source}: {part}: must be a list of steps")
        parsed = []
        for index, item in enumerate(steps, 1):
            step = _parse_step(item, source, part, index, actions, captured)
            captured.extend(capture.name for capture in step.captures)
            parsed.append(step)
        parts[part] = tuple(parsed)
    split, terminate = _parse_split(data.get("split"), data.get("terminate"), source)
    stream = None
    if data.get("stream") is not None:
        from scenarios.stream import parse_stream  # it imports this module

        try:
            stream = parse_stream(data["stream"], protocol)
        except ConversationError as error:
            raise ConversationError(f"{source}: {error}") from None
    feed = None
    if data.get("feed") is not None:
        from scenarios.feed import parse_feed  # it imports this module

        def feed_step(item: Any, part: str, index: int, acts: Mapping[str, frozenset[str]], known: list[str]) -> Step:
            return _parse_step(item, source, part, index, acts, known)

        try:
            feed = parse_feed(data["feed"], actions, persisted_capture_names(data), feed_step)
        except ConversationError as error:
            message = str(error)
            raise ConversationError(message if message.startswith(source) else f"{source}: {message}") from None
    resume = data.get("resume", False)
    if not isinstance(resume, bool):
        raise ConversationError(f"{source}: resume: must be true or false")
    if stream is None and any(
        STREAM_LAST in repr((step.value, dict(step.options))) for steps in parts.values() for step in steps
    ):
        raise ConversationError(f"{source}: ${{stream.last}} needs a stream: (which messages, and their seq:)")
    return Conversation(
        protocol=protocol,
        stream=stream,
        resume=resume,
        feed=feed,
        subprotocols=_parse_subprotocols(data.get("subprotocols"), source),
        headers=_parse_headers(data.get("headers"), source),
        settings={key: data[key] for key in settings_keys if key in data},
        source=source,
        split=split,
        terminate=terminate,
        replies=_parse_replies(data.get("reply"), source, captured),
        heartbeat=_parse_heartbeat(data.get("heartbeat"), source, captured),
        **parts,
    )


def _parse_split(value: Any, terminate: Any, source: str) -> tuple[str | None, bool]:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConversationError(f'{source}: split: must be a non-empty string such as "\\u001e" or "\\n"')
    if terminate is not None and not isinstance(terminate, bool):
        raise ConversationError(f"{source}: terminate: must be true or false")
    if terminate and value is None:
        raise ConversationError(f"{source}: terminate: needs split (the separator that ends each send)")
    return value, bool(terminate)


REPLY_KEYS = frozenset((*WHEN_KEYS, "send"))
HEARTBEAT_KEYS = frozenset(("every_ms", "send"))


def _parse_replies(value: Any, source: str, known: list[str]) -> tuple[ReplyRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConversationError(f"{source}: reply: must be a list of rules such as {{when: {{type: ping}}, send: ...}}")
    rules = []
    for index, item in enumerate(value, 1):
        where = f"{source}: reply rule {index}"
        if not isinstance(item, Mapping):
            raise ConversationError(f"{where}: must be a mapping such as {{when: {{type: ping}}, send: ...}}")
        extra = [key for key in item if key not in REPLY_KEYS]
        if extra:
            raise ConversationError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(REPLY_KEYS))})")
        try:
            when, when_text, when_regex = (item.get(key) for key in WHEN_KEYS)
            rules.append(reply_rule(item.get("send"), when, when_text, when_regex, known=known))
        except ConversationError as error:
            raise ConversationError(f"{where}: {error}") from None
    return tuple(rules)


def _parse_heartbeat(value: Any, source: str, known: list[str]) -> Heartbeat | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConversationError(f"{source}: heartbeat: must be a mapping {{every_ms: ..., send: ...}}")
    extra = [key for key in value if key not in HEARTBEAT_KEYS]
    if extra:
        raise ConversationError(
            f"{source}: heartbeat: unknown key {extra[0]!r} (allowed: {', '.join(sorted(HEARTBEAT_KEYS))})"
        )
    try:
        return heartbeat(value.get("every_ms"), value.get("send"), known=known)
    except ConversationError as error:
        raise ConversationError(f"{source}: {error}") from None


def _parse_step(
    item: Any, source: str, part: str, index: int, actions: Mapping[str, frozenset[str]], known: list[str]
) -> Step:
    where = f"{source}: {part} step {index}"
    if not isinstance(item, Mapping):
        raise ConversationError(f"{where}: must be a mapping such as {{send: ...}} or {{expect: ...}}")
    found = [key for key in item if key in actions]
    if len(found) > 1:
        # An action's option may share an action's name (graphql-ws `subscribe` takes `expect:`).
        found = [key for key in found if not any(key in actions[other] for other in found if other != key)]
    if not found:
        raise ConversationError(f"{where}: no action; use one of {', '.join(actions)}")
    if len(found) > 1:
        raise ConversationError(f"{where}: two actions ({found[0]}, {found[1]}); one step does one thing")
    action = found[0]
    allowed = COMMON_STEP_KEYS | actions[action]
    extra = [key for key in item if key != action and key not in allowed]
    if extra:
        raise ConversationError(f"{where}: unknown key {extra[0]!r} for {action}")
    name = item.get("name", f"{part}-{index}")
    if not isinstance(name, str) or not name.strip():
        raise ConversationError(f"{where}: name must be a non-empty string")
    options = {key: item[key] for key in actions[action] if key in item}
    try:
        return make_step(action, item[action], name.strip(), item.get("timeout_ms"), options, item.get(CAPTURE), known)
    except ConversationError as error:
        raise ConversationError(f"{where}: {error}") from None


def _parse_subprotocols(value: Any, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConversationError(f"{source}: subprotocols: must be a list of names")
    return tuple(v.strip() for v in value)


def _parse_headers(value: Any, source: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        pairs = [tuple(part.strip() for part in v.partition(":")[::2]) for v in value]
    else:
        raise ConversationError(f"{source}: headers: must be a mapping of name: value")
    headers = []
    for name, header_value in pairs:
        try:
            headers.append(parse_header(f"{name}: {header_value}"))
        except ValueError as error:
            raise ConversationError(f"{source}: headers: {error}") from None
    return tuple(headers)


HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
RESERVED_HEADERS = frozenset(
    ("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol")
)


def parse_header(line: str) -> tuple[str, str]:
    """`Name: value` as a pair; ValueError naming the header (never its value) when bad."""
    name, colon, value = line.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not HEADER_NAME.match(name):
        raise ValueError("a header must look like 'Name: value'")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"the header {name} is set by the handshake itself")
    if "\r" in value or "\n" in value:
        raise ValueError(f"the value of {name} holds a line break")
    if unknown_variables(value):
        raise ValueError(f"the value of {name} holds an unknown variable")
    return name, value
