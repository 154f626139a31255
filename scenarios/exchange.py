"""A conversation in progress on one connection: the thin I/O between steps and frames.

`Talk` runs steps (`scenarios.conversation`) over a `WebSocketSession` with the
connection's framing (`scenarios.protocols`): it sends what a step sends, reads frames
until the step's expectation matches or its timeout, answers the protocol's pings (and the
conversation's `reply` rules), sends its `heartbeat` when due, keeps what steps `capture`,
and reports every waiting step as a Locust row through a callback. It is also the public API
of conversations written in Python (`FlappingUser.on_open`, `on_hold`, `on_close`).
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from locust.exception import InterruptTaskSet, LocustError, RescheduleTask, StopTest, StopUser
from websocket import ABNF

from scenarios.continuity import UserCarry
from scenarios.conversation import (
    EXPECT,
    EXPECT_BINARY,
    EXPECT_REGEX,
    EXPECT_TEXT,
    MATCHED,
    NOT_IT,
    REF,
    SEND,
    SEND_BINARY,
    Conversation,
    Expectation,
    HeartbeatSchedule,
    Message,
    ReplyRule,
    Step,
    Variables,
    answer,
    capture_values,
    heartbeat,
    make_step,
    reply_rule,
)
from scenarios.protocols import ConnectionFraming, describe_close_code
from scenarios.stream import NOT_STREAM, UNREADABLE
from scenarios.ws_session import WebSocketSession, WsFailure

logger = logging.getLogger("flapping_pack")
NO_MESSAGES: tuple[Message, ...] = ()
NO_CONVERSATION = Conversation()  # a Talk's steps when it was given none
# report(name, started, response_length, failure): one Locust row; `started` is a perf_counter() value.
Report = Callable[[str, float, int, WsFailure | None], None]


class StepFailed(WsFailure):
    """A step failed and its row was reported; the session is over (the connection is dropped)."""


def close_failure(data: bytes, names: Any) -> WsFailure:
    """The failure for a close frame from the server: its code and class, never its reason text."""
    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
    return WsFailure(describe_close_code(code, names))


class Talk:
    """One connection's conversation: runs steps, reports their rows, answers pings, counts messages."""

    __slots__ = (
        "session",
        "framing",
        "variables",
        "part",
        "timeout_s",
        "conversation",
        "messages_received",
        "replies",
        "_heartbeat",
        "_beat",
        "_pending",
        "_report",
        "_started",
        "_stream",
        "_user_stream",
    )

    def __init__(
        self,
        session: WebSocketSession,
        framing: ConnectionFraming,
        variables: Variables,
        report: Report,
        timeout_s: float,
        conversation: Conversation = NO_CONVERSATION,
    ) -> None:
        self.session = session  # the open connection
        self.framing = framing  # this connection's protocol state
        self.variables = variables  # what ${user}, ${cycle} and ${token} stand for
        self.part = "open"  # the part running now: open, hold or close (names failures and default rows)
        self.timeout_s = timeout_s  # an expect's default timeout (--ws-timeout-s)
        self.conversation = conversation  # the run's conversation file: the steps a ConversationScript runs
        self.messages_received = 0  # application messages read on this connection
        self.replies: tuple[ReplyRule, ...] = conversation.replies  # answers to the server's application pings
        self._heartbeat: Step | None = None  # what the client heartbeat sends, if it has one
        self._beat: HeartbeatSchedule | None = None  # ... and when it is due
        if conversation.heartbeat is not None:
            self._start_heartbeat(conversation.heartbeat.every_ms, conversation.heartbeat.send)
        self._pending: tuple[Message, ...] = NO_MESSAGES  # messages of a split frame after the one a step took
        self._report = report  # fires one Locust row
        self._started: float | None = None  # when the current exchange began: its first send since the last expect
        carry: UserCarry | None = variables.carry
        user_stream = carry.stream if carry is not None else None
        # The stream's definition and the user's stream it feeds, when both exist (flapping users).
        self._stream = conversation.stream if user_stream is not None else None
        self._user_stream = user_stream

    # --- the public API of Python conversations -----------------------------------------------

    @property
    def user(self) -> int:
        """The user's number in its process (`${user}`)."""
        return self.variables.user

    @property
    def cycle(self) -> int:
        """The cycle's index (`${cycle}`)."""
        return self.variables.cycle

    @property
    def captured(self) -> dict[str, str]:
        """What steps captured on this connection, by name (and `ref`: the latest send's number), as text."""
        return self.variables.values

    @property
    def ref(self) -> int:
        """`${ref}`: the number of this connection's latest send (0 before the first)."""
        return int(self.variables.values.get(REF, 0))

    def send(self, value: Any, name: str | None = None) -> None:
        """Send a string as a text frame, anything else as JSON text (a failed send is a row under `name`)."""
        self.step(make_step(SEND, value, name or f"{self.part}-send", known=self.variables.values))

    def expect(self, subset: Any, name: str | None = None, timeout_ms: float | None = None, capture: Any = None) -> Any:
        """Wait for the first JSON message containing `subset`; returns that message, decoded.

        `capture` ({name: dot.path}) keeps values of it for later steps (`${name}`, `captured`).
        """
        step = make_step(
            EXPECT, subset, name or f"{self.part}-expect", timeout_ms, None, capture, self.variables.values
        )
        message = self.step(step)
        assert message is not None
        return message.json()

    def expect_text(self, text: str, name: str | None = None, timeout_ms: float | None = None) -> str:
        """Wait for the first message whose text is exactly `text`; returns it."""
        step = make_step(EXPECT_TEXT, text, name or f"{self.part}-expect", timeout_ms, known=self.variables.values)
        message = self.step(step)
        assert message is not None
        return message.text

    def expect_regex(self, pattern: str, name: str | None = None, timeout_ms: float | None = None) -> re.Match[str]:
        """Wait for the first message the regular expression finds a match in; returns the match."""
        step = make_step(EXPECT_REGEX, pattern, name or f"{self.part}-expect", timeout_ms, known=self.variables.values)
        message = self.step(step)
        assert message is not None
        match = step.regex(self.variables).search(message.text)
        assert match is not None
        return match

    def send_binary(self, data: bytes, name: str | None = None) -> None:
        """Send bytes as a binary frame (a failed send is a row under `name`)."""
        self.step(make_step(SEND_BINARY, {"hex": data.hex()}, name or f"{self.part}-send"))

    def expect_binary(self, prefix: bytes = b"", name: str | None = None, timeout_ms: float | None = None) -> bytes:
        """Wait for the first binary message starting with `prefix` (text messages are skipped); returns its bytes."""
        message = self.step(make_step(EXPECT_BINARY, prefix.hex(), name or f"{self.part}-expect", timeout_ms))
        assert message is not None and message.data is not None
        return message.data

    def do(
        self,
        action: str,
        value: Any,
        name: str | None = None,
        timeout_ms: float | None = None,
        capture: Any = None,
        **options: Any,
    ):
        """Run any action of the protocol (`emit`, `expect_event`, `subscribe`, ...); returns the matched Message."""
        step = make_step(
            action, value, name or f"{self.part}-{action}", timeout_ms, options, capture, self.variables.values
        )
        return self.step(step)

    def reply(self, send: Any, when: Any = None, when_text: str | None = None, when_regex: str | None = None) -> None:
        """From now on, answer each message `when` (a JSON subset), `when_text` or `when_regex` matches with `send`.

        The conversation file's `reply:` rules; the message answered is not shown to expect steps.
        """
        self.replies = (*self.replies, reply_rule(send, when, when_text, when_regex))

    def heartbeat(self, every_ms: float, send: Any) -> None:
        """From now on, send `send` every `every_ms` while the connection waits (the file's `heartbeat:`)."""
        beat = heartbeat(every_ms, send)
        self._start_heartbeat(beat.every_ms, beat.send)

    def split(self, separator: str, terminate: bool = False) -> None:
        """From now on, a frame carries several messages separated by `separator` (`terminate`: sends end with it)."""
        self.framing = self.framing.with_split(separator, terminate)

    def _start_heartbeat(self, every_ms: float, send: Step) -> None:
        self._heartbeat = send
        self._beat = HeartbeatSchedule(every_ms, time.perf_counter())

    # --- running steps ---------------------------------------------------------------------------

    def run(self, steps: Iterable[Step]) -> None:
        """Run steps in order; the first failure raises StepFailed (its row reported)."""
        for step in steps:
            self.step(step)

    def step(self, step: Step) -> Message | None:
        """Run one step: send its frames, then wait for its expectation, if any.

        A waiting step is a row timed from its exchange's start (the first send since the
        previous wait), so `send` then `expect` times one exchange. A send-only step reports a
        row only when it fails. Raises StepFailed after reporting a failure.
        """
        started = self._started
        if started is None:
            started = self._started = time.perf_counter()
        expectation: Expectation | None = None
        try:
            self._send(step)
            expectation = self.framing.expectation(step, self.variables)
            if expectation is None:
                return None
            timeout_s = step.timeout_ms / 1000.0 if step.timeout_ms is not None else self.timeout_s
            with self.session.deadline(timeout_s, expectation.timeout_reason):
                message = self._wait_for(expectation, time.perf_counter() + timeout_s)
            if step.captures:
                found = capture_values(step.captures, message)
                if isinstance(found, str):
                    raise WsFailure(found)
                self.variables.values.update(found)
                self._persist(step, found)
        except WsFailure as failure:
            raise self.fail(step.name, failure, started) from None
        self._started = None
        self._report(step.name, started, message.size, None)
        return message

    def _send(self, step: Step) -> None:
        """Send the frames of `step`; `${ref}` counts the steps that sent something."""
        values = self.variables.values
        previous = values.get(REF)
        values[REF] = str(int(previous or 0) + 1)
        frames = self.framing.outgoing(step, self.variables)
        if not frames:
            if previous is None:
                del values[REF]
            else:
                values[REF] = previous
        for frame in frames:
            self.session.send_frame(frame, self.part)

    def _heartbeat_until_readable(self, until: float) -> bool:
        """Send what is due by time until a frame can be read (True) or the perf clock reaches `until` (False).

        Due by time: the heartbeat, and the protocol's own timed frames (MQTT's PINGREQ); the
        protocol's session failing meanwhile (no PINGRESP) raises WsFailure.
        """
        beat = self._beat
        framing = self.framing
        session = self.session
        while True:
            now = time.perf_counter()
            wait = until - now
            if beat is not None:
                assert self._heartbeat is not None
                if beat.take(now):
                    self._send(self._heartbeat)
                wait = min(wait, beat.due - now)
            if framing.timed:
                wake = framing.next_tick_s()
                if wake is not None and wake <= now:
                    self._tick(now)
                    continue
                if wake is not None:
                    wait = min(wait, wake - now)
            if until - now <= 0:
                return False
            if session.readable(max(wait, 0.0)):
                return True

    def _tick(self, now: float) -> None:
        """Send the protocol's frames due by time; its session failing (a missing PINGRESP) raises."""
        for frame in self.framing.tick(now):
            self.session.send_frame(frame, self.part)
        if self.framing.ended is not None:
            raise WsFailure(self.framing.ended)

    def _wait_for(self, expectation: Expectation, deadline: float = float("inf")) -> Message:
        """Read until a message is the awaited one (the caller bounds the time by `deadline`); a failure result raises.

        Timed frames go out meanwhile, but a protocol tick not due before the deadline costs no
        extra wait (MQTT's keepalive is seconds away during most steps).
        """
        framing = self.framing
        while True:
            if self._pending:
                messages, self._pending = self._pending, NO_MESSAGES
            else:
                tick = framing.next_tick_s() if framing.timed else None
                if self._beat is not None or (tick is not None and tick < deadline):
                    self._heartbeat_until_readable(float("inf"))
                messages = self._read()
            for index, message in enumerate(messages):
                result = expectation.check(message)
                if result is MATCHED:
                    self._pending = messages[index + 1 :]  # the frame's later messages, for the next step
                    for frame in expectation.after:
                        self.session.send_frame(frame, self.part)
                    return message
                if result is not NOT_IT:
                    raise WsFailure(str(result))

    def _read(self) -> tuple[Message, ...]:
        """Read one frame: answer what the protocol answers, return its application messages."""
        opcode, data = self.session.receive(self.part)
        if opcode == ABNF.OPCODE_CLOSE:
            raise close_failure(data, self.framing.close_names())
        if opcode == ABNF.OPCODE_PING or opcode == ABNF.OPCODE_PONG:
            return NO_MESSAGES  # answered by the session
        framing = self.framing
        if opcode == ABNF.OPCODE_BINARY:
            # Raw: a binary frame of UTF-8 text is read as text too (nats-server sends its text
            # protocol in binary frames); other bytes only by binary expects.
            replies, messages = framing.receive_binary(data)
        else:
            replies, messages = framing.receive(data.decode("utf-8", "replace"))
        for frame in replies:
            self.session.send_frame(frame, self.part)
        if self.replies and messages:
            answers, messages = answer(self.replies, messages)
            for step in answers:
                self._send(step)
        self.messages_received += len(messages)
        if self._stream is not None:
            self._feed_stream(messages)
        return messages

    def _persist(self, step: Step, found: dict[str, str]) -> None:
        """Captures with `persist: true` go to the user's carry: its next connections start with them."""
        carry: UserCarry | None = self.variables.carry
        if carry is None:
            return
        for capture in step.captures:
            if capture.persist:
                carry.persisted[capture.name] = found[capture.name]

    def _feed_stream(self, messages: tuple[Message, ...]) -> None:
        """Every stream message read, during steps and holds alike, goes to the user's stream."""
        stream, user_stream = self._stream, self._user_stream
        assert stream is not None and user_stream is not None
        for message in messages:
            seq = stream.seq_of(message)
            if seq is NOT_STREAM:
                continue
            if seq is UNREADABLE:
                user_stream.unreadable()
            else:
                user_stream.received(seq)

    def _read_idle(self) -> None:
        """Read one frame while no step waits: the protocol's session ending (Socket.IO DISCONNECT) fails the part."""
        self._read()
        if self.framing.ended is not None:
            raise WsFailure(self.framing.ended)

    def idle_until(self, until: float) -> None:
        """Keep the connection alive until the perf clock reaches `until`: read what comes, answer pings.

        The protocol's timed frames (MQTT's PINGREQ) go out when due, however long the hold.
        A close frame, a dropped connection or the protocol's session failing (no PINGRESP) is
        a failure of the `hold` row (StepFailed).
        """
        session = self.session
        self._pending = NO_MESSAGES  # read while no step waited, as the frames read here are
        try:
            while (remaining := until - time.perf_counter()) > 0:
                if self._beat is not None or self.framing.timed:
                    if not self._heartbeat_until_readable(until):
                        return
                elif not session.readable(remaining):
                    return
                with self.session.deadline(self.timeout_s, f"{self.part} timed out"):
                    self._read_idle()
        except WsFailure as failure:
            raise self.fail(self.part, failure) from None

    def fail(self, name: str, failure: WsFailure, started: float | None = None) -> StepFailed:
        """End the session: drop the connection, report `failure` under `name`; returns the StepFailed to raise.

        The row is timed from `started` (a perf_counter() value), or has no time.
        """
        self.session.abort()
        self._started = None
        self._report(name, time.perf_counter() if started is None else started, 0, failure)
        return StepFailed(failure.message)

    def close_clean(self) -> None:
        """Close cleanly: the protocol's goodbye (Socket.IO's DISCONNECT) and the close frame in one write.

        Raises WsFailure; whether that makes a failed row is the caller's choice.
        """
        self.session.close_clean(self.framing.goodbye())


_LOCUST_CONTROL = (StopUser, StopTest, InterruptTaskSet, RescheduleTask, LocustError)  # Locust's own flow: passed on
_logged_errors: set[tuple[str, str]] = set()  # (part, exception type) already logged with a traceback


def converse(
    talk: Talk, part: str, hook: Callable[[Talk], object], protocol_steps: tuple[Step, ...] = ()
) -> WsFailure | None:
    """Run one part of a connection's conversation: the protocol's own steps, then the hook.

    `hook` is a user's `on_open`, `on_hold` or `on_close` (a FlappingUser's, or one lent to
    the probe and the steady users). Returns None when the part passed, else the failure:
    a failed step (its row already reported) or an error in the hook's own code (reported
    as a failure of the part's row, its traceback logged once). The connection is dropped
    on failure; Locust's own control exceptions pass through.
    """
    talk.part = part
    try:
        talk.run(protocol_steps)
        hook(talk)
    except StepFailed as failure:
        return failure
    except WsFailure as failure:  # raised by the script itself
        talk.fail(part, failure)
        return failure
    except _LOCUST_CONTROL:
        talk.session.abort()
        raise
    except Exception as error:
        kind = type(error).__name__
        if (part, kind) not in _logged_errors:
            _logged_errors.add((part, kind))
            logger.error("flapping-pack: %s in on_%s:\n%s", kind, part, traceback.format_exc())
        script_failure = WsFailure(f"{kind} in on_{part}")
        talk.fail(part, script_failure)
        return script_failure
    return None
