"""Conversations: what a connection says after each (re)connect, as pure data and pure logic.

A conversation has three parts of steps: `open` runs after the handshake (a session is
established when every open step passed), `hold` runs during each hold, `close` runs
before a clean disconnect. A step sends (`send`) or waits for the first matching
message (`expect`: a JSON subset; `expect_text`: exact text; `expect_regex`); a protocol
(`scenarios.protocols`) may add its own actions (Socket.IO's `emit`, GraphQL's `subscribe`).

Sans-I/O, as websockets' protocol objects: no sockets, gevent or Locust. Matching,
substitution of `${user}`, `${cycle}` and `${token}`, and the loading of a conversation
file (YAML; JSON is YAML too) are here; `scenarios.exchange` moves the frames.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PARTS = ("open", "hold", "close")
SEND = "send"
EXPECT = "expect"
EXPECT_TEXT = "expect_text"
EXPECT_REGEX = "expect_regex"
RAW_ACTIONS: Mapping[str, frozenset[str]] = {  # action -> the keys it takes besides name and timeout_ms
    SEND: frozenset(),
    EXPECT: frozenset(),
    EXPECT_TEXT: frozenset(),
    EXPECT_REGEX: frozenset(),
}
COMMON_STEP_KEYS = frozenset(("name", "timeout_ms"))
TOP_LEVEL_KEYS = frozenset(("protocol", "subprotocols", "headers", *PARTS))
VARIABLE = re.compile(r"\$\{([^}]*)\}")
VARIABLES = ("user", "cycle", "token")
ECHO_TEXT = "flap ${user}:${cycle}"  # the default conversation's message


class ConversationError(ValueError):
    """A bad conversation: the message is the one line the user sees (file, part, step, what)."""


@dataclass(frozen=True, slots=True)
class Variables:
    """What `${...}` in a step's strings stands for, per connection."""

    user: int = 0  # the user's number in its process
    cycle: int = 0  # the cycle's index
    token: str = field(default="", repr=False)  # the auth token: a secret, never shown


def _has_variables(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_variables(k) or _has_variables(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_variables(v) for v in value)
    return False


def substitute(value: Any, variables: Variables) -> Any:
    """`value` with `${user}`, `${cycle}` and `${token}` replaced in every string, recursively."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        # Plain replaces (C loops; this runs per step per cycle). The token goes last, so a
        # token holding "${user}" stays as it is; unknown names were refused by make_step.
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
    """An expect_regex pattern with `${user}` and `${cycle}` replaced by their values, escaped."""
    return pattern.replace("${user}", re.escape(str(variables.user))).replace(
        "${cycle}", re.escape(str(variables.cycle))
    )


def unknown_variables(value: Any) -> list[str]:
    """The names in `${...}` that are not variables of a conversation."""
    if isinstance(value, str):
        return [name for name in VARIABLE.findall(value) if name not in VARIABLES]
    if isinstance(value, Mapping):
        return [name for k, v in value.items() for name in unknown_variables(k) + unknown_variables(v)]
    if isinstance(value, (list, tuple)):
        return [name for v in value for name in unknown_variables(v)]
    return []


def contains(expected: Any, actual: Any) -> bool:
    """Whether `actual` (decoded JSON) contains `expected`: mappings by subset, recursively.

    A mapping matches a mapping that has each of its keys with a matching value; a list
    matches a list of the same length, element by element; anything else must be equal
    (and of the same kind: `true` is not `1`).
    """
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return False
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


_NOT_DECODED = object()


class Message:
    """One application message from the server, as a protocol decoded it.

    `text` is its payload as text (for raw WebSocket: the whole frame); `kind` and `key`
    are the protocol's (Socket.IO: "event" and the event name; GraphQL: "next" and the
    operation id; raw: "message"). `args` holds a Socket.IO event's or ack's arguments.
    """

    __slots__ = ("text", "kind", "key", "args", "_json")

    def __init__(self, text: str, kind: str = "message", key: Any = None, args: Any = None) -> None:
        self.text = text  # the payload as text
        self.kind = kind  # what sort of message, in the protocol's words
        self.key = key  # event name, ack id or operation id, when the protocol has one
        self.args = args  # decoded arguments (Socket.IO), when the protocol has them
        self._json: Any = _NOT_DECODED  # decoded once, on first use

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
    """

    __slots__ = ("predicate", "after", "skipped", "skipped_not_json", "matched")

    def __init__(self, predicate: Callable[[Message], MatchResult], after: tuple[str, ...] = ()) -> None:
        self.predicate = predicate  # the protocol's or the step's test of a message
        self.after = after  # frames to send once matched
        self.skipped = 0  # messages that were not it
        self.skipped_not_json = 0  # ... of which were not JSON
        self.matched: Message | None = None  # the message that matched

    def check(self, message: Message) -> MatchResult:
        """Test one message; remembers a match and counts what was skipped."""
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
) -> Step:
    """A step, with its template flag and (expect_regex) compiled pattern; ConversationError when bad."""
    options = dict(options or {})
    unknown = unknown_variables(value) + unknown_variables(options)
    if unknown:
        known = ", ".join("${" + v + "}" for v in VARIABLES)
        raise ConversationError(f"unknown variable ${{{unknown[0]}}}; use {known}")
    if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float))):
        raise ConversationError("timeout_ms must be a number")
    if timeout_ms is not None and timeout_ms <= 0:
        raise ConversationError("timeout_ms must be > 0")
    pattern = None
    if action == EXPECT_REGEX:
        if not isinstance(value, str):
            raise ConversationError("expect_regex takes a string")
        if "${token}" in value:
            raise ConversationError("expect_regex can hold ${user} and ${cycle}, not ${token}")
        try:
            # Compiled with sample values: the per-connection pattern differs only in literal text.
            pattern = re.compile(regex_text(value, Variables()))
        except re.error as error:
            raise ConversationError(f"expect_regex does not compile: {error}") from None
    if action == EXPECT_TEXT and not isinstance(value, str):
        raise ConversationError("expect_text takes a string")
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
    )


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

    def part(self, name: str) -> tuple[Step, ...]:
        """The steps of one part."""
        steps: tuple[Step, ...] = getattr(self, name)
        return steps


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
    for part in PARTS:
        steps = data.get(part) or []
        if not isinstance(steps, list):
            raise ConversationError(f"{source}: {part}: must be a list of steps")
        parts[part] = tuple(_parse_step(item, source, part, index, actions) for index, item in enumerate(steps, 1))
    return Conversation(
        protocol=protocol,
        subprotocols=_parse_subprotocols(data.get("subprotocols"), source),
        headers=_parse_headers(data.get("headers"), source),
        settings={key: data[key] for key in settings_keys if key in data},
        source=source,
        **parts,
    )


def _parse_step(item: Any, source: str, part: str, index: int, actions: Mapping[str, frozenset[str]]) -> Step:
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
        return make_step(action, item[action], name.strip(), item.get("timeout_ms"), options)
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
