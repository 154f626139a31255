"""MQTT over WebSocket as a conversation's protocol (`protocol: mqtt`): steps to MQTT packets, packets to messages.

The packets and the client session are `scenarios.protocols.mqtt`'s (written from the OASIS
MQTT 3.1.1 and 5.0 specifications); this module only maps a conversation onto them. Every
frame is binary, subprotocol `mqtt`. The protocol's open step is the `session` row: CONNECT,
answered by an accepting CONNACK (a refusal fails it by name: `connection refused: bad user
name or password`). Steps of a conversation with `protocol: mqtt`:

- `subscribe: TOPIC_FILTER` with `qos:` (0 or 1, default 0): SUBSCRIBE, answered by its
  SUBACK; a failure code fails the step (`subscribe failed: not authorized`).
- `publish: TOPIC` with `payload:` (a string as is, anything else as JSON), `qos:` (0 or 1)
  and `retain:`; QoS 0 only sends, QoS 1 waits for the PUBACK (the row's time).
- `expect_publish: TOPIC_FILTER` (wildcards `+` and `#`) with an optional `payload:`: a JSON
  subset (a mapping or list) or the exact text; waits for the first matching PUBLISH.

Incoming QoS 1 PUBLISHes are acknowledged at once. The keepalive's PINGREQ goes out when due,
in holds of any length and while steps wait; a PINGRESP that does not come within the
keepalive fails the session (`no PINGRESP within the keepalive`). A clean disconnect sends
DISCONNECT before the close frame; the other drops send nothing, so the broker fires wills.
File keys: `version` (`3.1.1` or `5`), `client_id`, `clean_start`, `session_expiry_s` (5.0
only), `keepalive_s`, `username`, `will`. The password is the token, with `--ws-auth-in payload`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from scenarios.continuity import UserCarry
from scenarios.conversation import (
    MATCHED,
    NOT_IT,
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
    number_without_worker,
    substitute,
    unknown_variables,
)
from scenarios.protocols import NO_FRAMES, ConnectionFraming, Frame, WireProtocol
from scenarios.protocols.awaiting import Awaiting
from scenarios.protocols.mqtt import (
    FOUR_BYTE_MAX,
    MQTT_3_1_1,
    MQTT_5,
    SUBPROTOCOL,
    TWO_BYTE_MAX,
    Connack,
    Connect,
    MqttSession,
    Puback,
    Publish,
    Suback,
    Will,
    check_topic_filter,
    check_topic_name,
    topic_matches,
)

SUBSCRIBE = "subscribe"
PUBLISH = "publish"
EXPECT_PUBLISH = "expect_publish"
CONNECT = "mqtt_connect"  # the opening step's action (not usable in files)
SESSION_ROW = "session"  # the Locust row of CONNECT .. CONNACK

VERSIONS = {"3.1.1": MQTT_3_1_1, "5": MQTT_5, "5.0": MQTT_5}  # the file's `version` -> the protocol level
DEFAULT_CLIENT_ID = "flap-${worker}-${user}"  # one per user of the run, Locust workers included
DEFAULT_KEEPALIVE_S = 60
DEFAULT_SESSION_EXPIRY_S = 5.0
WILL_KEYS = frozenset(("topic", "payload", "qos", "retain"))
SETTINGS_KEYS = frozenset(
    ("version", "client_id", "clean_start", "session_expiry_s", "keepalive_s", "username", "will")
)

# Message kinds, for the expectations.
KIND_CONNACK = "connack"
KIND_SUBACK = "suback"
KIND_PUBACK = "puback"
KIND_PUBLISH = "publish"
KIND_FAILED = "failed"  # the session failed (its text is the reason): every waiting step fails with it
TICK_SLACK_S = 0.001  # wake just after the keepalive's deadline, so the check sees it passed


def payload_bytes(value: Any) -> bytes:
    """A publish's or will's payload: a string as is, anything else as JSON."""
    return (value if isinstance(value, str) else compact_json(value)).encode()


class MqttFraming(ConnectionFraming):
    """One MQTT connection: its `MqttSession` (made by the open step), packet ids awaited, the keepalive."""

    timed = True  # PINGREQ is due by time alone

    def __init__(
        self, protocol: MqttProtocol, clock: Callable[[], float] = time.perf_counter, carry: UserCarry | None = None
    ) -> None:
        self.protocol = protocol  # settings, shared by every connection of the run
        self.carry = carry  # the user's stream across reconnects: told whether the broker kept the session
        self.clock = clock  # seconds, the clock the I/O layer's `tick` times come from
        self.session: MqttSession | None = None  # the MQTT session, once CONNECT is sent
        self._last_packet_id: int | None = None  # the packet id of the SUBSCRIBE or QoS 1 PUBLISH just sent

    def outgoing(self, step: Step, variables: Variables) -> tuple[Frame, ...]:
        """CONNECT, SUBSCRIBE or PUBLISH for `step`; nothing for expect_publish."""
        action = step.action
        now = self.clock()
        if action == CONNECT:
            self.session = MqttSession(self.protocol.connect_packet(variables))
            return (self.session.open(now),)
        session = self.session
        if session is None or action == EXPECT_PUBLISH:
            return NO_FRAMES
        topic = step.resolved(variables)
        qos = step.options.get("qos", 0)
        if action == SUBSCRIBE:
            self._last_packet_id, data = session.subscribe(((topic, qos),), now)
            return (data,)
        if action == PUBLISH:
            payload = payload_bytes(step.option("payload", variables, ""))
            retain = bool(step.options.get("retain", False))
            self._last_packet_id, data = session.publish(topic, payload, now, qos, retain)
            return (data,)
        return NO_FRAMES

    def expectation(self, step: Step, variables: Variables) -> Expectation | None:
        """What `step` waits for: the CONNACK, its SUBACK, its PUBACK (QoS 1), or a matching PUBLISH."""
        action = step.action
        if action == CONNECT:
            return Awaiting(_connack_test, "CONNACK timed out")
        if action == SUBSCRIBE:
            return Awaiting(_ack_test(KIND_SUBACK, self._last_packet_id), "SUBACK timed out")
        if action == PUBLISH:
            if not step.options.get("qos", 0):
                return None
            return Awaiting(_ack_test(KIND_PUBACK, self._last_packet_id), "PUBACK timed out")
        if action == EXPECT_PUBLISH:
            return _publish_expectation(
                step.resolved(variables), "payload" in step.options, step.option("payload", variables)
            )
        return None

    def receive(self, text: str) -> tuple[tuple[Frame, ...], tuple[Message, ...]]:
        """A text frame: MQTT over WebSocket is binary only (6.0), so the session fails."""
        return NO_FRAMES, self._failed("protocol error: a text frame")

    def receive_binary(self, data: bytes) -> tuple[tuple[Frame, ...], tuple[Message, ...]]:
        """Feed the bytes to the session: its replies (PUBACKs), and the packets as messages."""
        session = self.session
        if session is None:
            return NO_FRAMES, self._failed("protocol error: bytes before CONNECT")
        now = self.clock()
        replies, packets = session.receive(data, now)
        messages: list[Message] = []
        for packet in packets:
            if isinstance(packet, Publish):
                messages.append(Message(packet.payload.decode("utf-8", "replace"), KIND_PUBLISH, packet.topic))
            elif isinstance(packet, Connack):
                messages.append(Message("", KIND_CONNACK, args=packet))
                carry = self.carry
                if carry is not None and carry.resuming and packet.return_code == 0:
                    carry.server_answered(packet.session_present)  # the broker kept the session, or not
            elif isinstance(packet, Suback):
                messages.append(Message("", KIND_SUBACK, packet.packet_id, packet))
            elif isinstance(packet, Puback):
                messages.append(Message("", KIND_PUBACK, packet.packet_id, packet))
        failure = session.failure(now)
        if failure is not None and self.ended is None:
            messages.extend(self._failed(failure))
        return replies, tuple(messages)

    def _failed(self, reason: str) -> tuple[Message, ...]:
        self.ended = reason
        return (Message(reason, KIND_FAILED),)

    def tick(self, now_s: float) -> tuple[Frame, ...]:
        """The PINGREQ when the keepalive passed; a PINGREQ unanswered for a keepalive ends the session."""
        session = self.session
        if session is None:
            return NO_FRAMES
        frames = session.due(now_s)
        failure = session.failure(now_s)
        if failure is not None:
            self.ended = failure
        return frames

    def next_tick_s(self) -> float | None:
        """When the next PINGREQ is due, or the unanswered one's PINGRESP is overdue."""
        session = self.session
        if session is None or self.ended is not None:
            return None
        due = session.next_check_s()
        return None if due is None else due + TICK_SLACK_S

    def goodbye(self) -> tuple[Frame, ...]:
        """DISCONNECT, when the session is up (a clean close; other drops send nothing, so wills fire)."""
        session = self.session
        if session is None or not session.connected:
            return NO_FRAMES
        return (session.close(self.clock()),)


def _connack_test(message: Message) -> MatchResult:
    if message.kind == KIND_CONNACK:
        return message.args.refusal or MATCHED
    if message.kind == KIND_FAILED:
        return message.text
    return NOT_IT


def _ack_test(kind: str, packet_id: int | None) -> Callable[[Message], MatchResult]:
    def test(message: Message) -> MatchResult:
        if message.kind == KIND_FAILED:
            return message.text
        if message.kind != kind or message.key != packet_id:
            return NOT_IT
        if kind == KIND_SUBACK:
            failures = message.args.failures
            return f"subscribe failed: {failures[0]}" if failures else MATCHED
        failure = message.args.failure
        return f"publish failed: {failure}" if failure else MATCHED

    return test


def _publish_expectation(topic_filter: str, has_payload: bool, expected: Any) -> Expectation:
    def test(message: Message) -> MatchResult:
        if message.kind == KIND_FAILED:
            return message.text
        if message.kind != KIND_PUBLISH or not topic_matches(topic_filter, message.key):
            return NOT_IT
        if has_payload:
            if isinstance(expected, str):
                matched = message.text == expected
            else:
                matched = message.is_json() and contains(expected, message.json())
            if not matched:
                awaiting.near_misses += 1
                return NOT_IT
        return MATCHED

    def reason(expectation: Awaiting) -> str:
        return "expect_publish timed out: no payload matched" if expectation.near_misses else "expect_publish timed out"

    awaiting = Awaiting(test, reason)
    return awaiting


class MqttProtocol(WireProtocol):
    """MQTT 3.1.1 or 5.0 over WebSocket, subprotocol mqtt (see the module's docstring)."""

    name = "mqtt"
    actions: Mapping[str, frozenset[str]] = {
        SUBSCRIBE: frozenset(("qos",)),
        PUBLISH: frozenset(("payload", "qos", "retain")),
        EXPECT_PUBLISH: frozenset(("payload",)),
    }
    settings_keys = SETTINGS_KEYS
    auth_places = ("payload",)

    def __init__(self, conversation: Conversation, auth_in_payload: bool = False) -> None:
        super().__init__(conversation, auth_in_payload)
        self.validate(conversation)
        settings = conversation.settings
        self.level = level_of(settings.get("version", "3.1.1"))  # the CONNECT's protocol level
        self.client_id: str = settings.get("client_id", DEFAULT_CLIENT_ID)  # templated
        self.clean_start: bool = settings.get("clean_start", True)
        self.keepalive_s: int = settings.get("keepalive_s", DEFAULT_KEEPALIVE_S)
        self.username: str | None = settings.get("username")  # templated
        expiry = settings.get("session_expiry_s", DEFAULT_SESSION_EXPIRY_S)
        self.session_expiry_s = math.ceil(expiry) if self.level == MQTT_5 else None  # whole seconds on the wire
        will = settings.get("will")
        self.will: Mapping[str, Any] | None = will  # templated
        self._opening = (make_step(CONNECT, None, SESSION_ROW),)

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The conversation's subprotocols, then mqtt (once)."""
        own = self.conversation.subprotocols
        return own if SUBPROTOCOL in own else (*own, SUBPROTOCOL)

    def opening(self) -> tuple[Step, ...]:
        """One step, the `session` row: CONNECT, answered by CONNACK."""
        return self._opening

    def connection(self, carry: UserCarry | None = None) -> MqttFraming:
        """A new connection's framing; `carry` (a user's stream) hears whether the broker kept the session."""
        return MqttFraming(self, carry=carry)

    @property
    def resumes(self) -> bool:
        """Reconnects resume the session before without a clean start (or with `resume: true`: judged as if)."""
        return self.conversation.resume or not self.clean_start

    def connect_packet(self, variables: Variables) -> Connect:
        """This connection's CONNECT: the file's settings substituted, the token as password with auth in payload."""
        password = variables.token.encode() if self.auth_in_payload else None
        username = substitute(self.username, variables) if self.username is not None else None
        if password is not None and username is None and self.level == MQTT_3_1_1:
            username = ""  # 3.1.1 sends a password only after a user name (3.1.2.9)
        will = None
        if self.will is not None:
            will_setting = substitute(self.will, variables)
            will = Will(
                will_setting["topic"],
                payload_bytes(will_setting.get("payload", "")),
                will_setting.get("qos", 0),
                will_setting.get("retain", False),
            )
        return Connect(
            client_id=substitute(self.client_id, variables),
            level=self.level,
            clean_start=self.clean_start,
            keepalive_s=self.keepalive_s,
            username=username,
            password=password,
            will=will,
            session_expiry_s=self.session_expiry_s,
        )

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Each key's type and range; ConversationError naming the key, never a value that may be secret."""
        level = level_of(settings.get("version", "3.1.1"))
        for key in ("client_id", "username"):
            if key in settings:
                _check_text(settings[key], key)
        if "client_id" in settings and not settings["client_id"] and not settings.get("clean_start", True):
            raise ConversationError("client_id: must not be empty with clean_start: false")
        if not isinstance(settings.get("clean_start", True), bool):
            raise ConversationError("clean_start: must be true or false")
        keepalive = settings.get("keepalive_s", DEFAULT_KEEPALIVE_S)
        if isinstance(keepalive, bool) or not isinstance(keepalive, int) or not 0 <= keepalive <= TWO_BYTE_MAX:
            raise ConversationError(f"keepalive_s: must be whole seconds, 0 .. {TWO_BYTE_MAX} (0: no keepalive)")
        if "session_expiry_s" in settings:
            expiry = settings["session_expiry_s"]
            if level != MQTT_5:
                raise ConversationError("session_expiry_s: MQTT 5.0 only (version: 5)")
            if isinstance(expiry, bool) or not isinstance(expiry, (int, float)) or not 0 <= expiry <= FOUR_BYTE_MAX:
                raise ConversationError(f"session_expiry_s: must be a number of seconds, 0 .. {FOUR_BYTE_MAX}")
        if "will" in settings:
            _check_will(settings["will"])

    @classmethod
    def check_across_workers(cls, settings: Mapping[str, Any]) -> None:
        """Refuses a client id naming `${user}` without `${worker}`: two workers' users would share it."""
        if number_without_worker(settings.get("client_id", DEFAULT_CLIENT_ID)):
            raise ConversationError(
                "client_id: names ${user} without ${worker}, but with Locust workers each worker numbers its users "
                "from 0, so two users would share a client id and the broker would drop one "
                "(name both, as in flap-${worker}-${user})"
            )

    @classmethod
    def check_step(cls, step: Step) -> None:
        """Topics valid (as filters for subscribe and expect_publish), qos 0 or 1, retain a boolean."""
        topic = step.value
        if not isinstance(topic, str):
            raise ConversationError(f"{step.action} takes a topic (a string)")
        sample = substitute(topic, Variables())
        try:
            if step.action == PUBLISH:
                check_topic_name(sample)
            else:
                check_topic_filter(sample)
        except ValueError as error:
            raise ConversationError(f"{step.action}: {error}") from None
        qos = step.options.get("qos", 0)
        if qos not in (0, 1) or isinstance(qos, bool):
            raise ConversationError("qos: must be 0 or 1")
        if not isinstance(step.options.get("retain", False), bool):
            raise ConversationError("retain: must be true or false")
        if step.action == EXPECT_PUBLISH and "payload" in step.options and step.options["payload"] is None:
            raise ConversationError("payload: give a JSON subset or the exact text")


def level_of(version: Any) -> int:
    """The protocol level of a `version:` setting (`3.1.1` or `5`); ConversationError for another."""
    level = VERSIONS.get(str(version))
    if level is None or isinstance(version, bool):
        raise ConversationError("version: must be 3.1.1 or 5")
    return level


def _check_text(value: Any, key: str) -> None:
    if not isinstance(value, str):
        raise ConversationError(f"{key}: must be a string")
    unknown = unknown_variables(value)
    if unknown:
        raise ConversationError(f"{key}: unknown variable ${{{unknown[0]}}}")


def _check_will(will: Any) -> None:
    if not isinstance(will, Mapping) or "topic" not in will:
        raise ConversationError("will: must be a mapping with a topic (and payload, qos, retain)")
    extra = [key for key in will if key not in WILL_KEYS]
    if extra:
        raise ConversationError(f"will: unknown key {extra[0]!r} (allowed: {', '.join(sorted(WILL_KEYS))})")
    _check_text(will["topic"], "will topic")
    try:
        check_topic_name(substitute(will["topic"], Variables()))
    except ValueError as error:
        raise ConversationError(f"will: {error}") from None
    if will.get("qos", 0) not in (0, 1, 2) or isinstance(will.get("qos", 0), bool):
        raise ConversationError("will qos: must be 0, 1 or 2")
    if not isinstance(will.get("retain", False), bool):
        raise ConversationError("will retain: must be true or false")
    if unknown_variables(will.get("payload", "")):
        raise ConversationError("will payload: unknown variable")
