"""The primitives text protocols need, pure: split frames, reply rules, heartbeat timing, captures, JSON in strings."""

from __future__ import annotations

import pytest

from scenarios.conversation import (
    ConversationError,
    HeartbeatSchedule,
    Message,
    Variables,
    answer,
    capture_values,
    contains,
    make_step,
    parse_captures,
    reply_rule,
    split_messages,
    substitute,
)
from scenarios.protocols import ConnectionFraming, load_conversation_text, make_protocol
from scenarios.protocols.socketio import SocketIOFraming, SocketIOProtocol

SIGNALR_YAML = r"""
split: "\u001e"
terminate: true
reply:
  - when: {type: 6}
    send: {type: 6}
heartbeat: {every_ms: 15000, send: {type: 6}}
open:
  - send: {protocol: json, version: 1}
  - expect: {}
    name: handshake
hold:
  - send: {type: 1, invocationId: "${ref}", target: Echo, arguments: ["hi ${user}"]}
  - expect: {type: 3, invocationId: "${ref}"}
    capture: {answer: result}
  - send: {type: 1, target: Said, arguments: ["${answer}"]}
"""


class TestSplit:
    def test_a_frame_carries_several_messages_each_matched_on_its_own(self) -> None:
        """A frame of records separated (and ended) by the separator is that many messages; empty ones vanish."""
        assert split_messages('{"type":6}\x1e{"type":1}\x1e', "\x1e") == ['{"type":6}', '{"type":1}']
        framing = ConnectionFraming("\n")
        _replies, messages = framing.receive('{"a":1}\n{"b":2}\n')
        assert [m.json() for m in messages] == [{"a": 1}, {"b": 2}]

    def test_sends_end_with_the_separator_only_when_terminated(self) -> None:
        """terminate: true appends the separator to every send; without it sends go as they are."""
        step = make_step("send", {"protocol": "json", "version": 1}, "s")
        assert ConnectionFraming("\x1e", terminate=True).outgoing(step, Variables()) == (
            '{"protocol":"json","version":1}\x1e',
        )
        assert ConnectionFraming("\x1e").outgoing(step, Variables()) == ('{"protocol":"json","version":1}',)

    def test_a_file_with_split_makes_split_framings(self) -> None:
        """The conversation's split reaches the framing of every connection."""
        conversation = load_conversation_text(SIGNALR_YAML, "s.yaml")
        framing = make_protocol(conversation).connection()
        assert framing.separator == "\x1e" and framing.terminator == "\x1e"

    def test_split_is_for_raw_text_only(self) -> None:
        """A protocol with its own framing refuses split, in a file and from Python."""
        with pytest.raises(ConversationError, match=r"^s\.yaml: split: is for raw WebSocket text, not socketio"):
            load_conversation_text('protocol: socketio\nsplit: "\\n"', "s.yaml")
        protocol = SocketIOProtocol(load_conversation_text("protocol: socketio", "s.yaml"))
        with pytest.raises(ConversationError, match="split is for raw WebSocket text"):
            SocketIOFraming(protocol).with_split("\n")


class TestReplyRules:
    def test_pings_are_answered_and_hidden_from_the_steps(self) -> None:
        """A message a rule matches makes its send and is not left for expect steps; others are."""
        rules = (
            reply_rule({"type": 6}, when={"type": 6}),
            reply_rule("PONG", when_text="PING"),
            reply_rule({"event": "pusher:pong"}, when_regex=r'"event":\s*"pusher:ping"'),
        )
        messages = (
            Message('{"type":6}'),
            Message('{"type":1,"target":"x"}'),
            Message("PING"),
            Message('{"event": "pusher:ping", "data": {}}'),
            Message("not json"),
        )
        sends, left = answer(rules, messages)
        assert [step.value for step in sends] == [{"type": 6}, "PONG", {"event": "pusher:pong"}]
        assert [m.text for m in left] == ['{"type":1,"target":"x"}', "not json"]

    def test_no_match_leaves_the_messages_as_they_are(self) -> None:
        """When no rule matches, the frame's messages are passed on unchanged."""
        messages = (Message('{"type":1}'),)
        assert answer((reply_rule("x", when={"type": 6}),), messages) == ([], messages)

    def test_a_rule_needs_exactly_one_test_and_a_send(self) -> None:
        """when, when_text and when_regex are exclusive; send is required; a bad regex is refused."""
        with pytest.raises(ConversationError, match="one of when, when_text, when_regex"):
            reply_rule("x", when={"a": 1}, when_text="b")
        with pytest.raises(ConversationError, match="needs send"):
            reply_rule(None, when_text="PING")
        with pytest.raises(ConversationError, match="does not compile"):
            reply_rule("x", when_regex="(")


class TestHeartbeatSchedule:
    def test_due_every_period_on_the_injected_clock(self) -> None:
        """Started at 100 s with a 30 s period: due at 130, then 160; nothing in between."""
        schedule = HeartbeatSchedule(30_000, now=100.0)
        assert not schedule.take(129.9)
        assert schedule.take(130.0)
        assert not schedule.take(131.0)
        assert schedule.due == 160.0
        assert schedule.take(160.5)

    def test_a_late_reader_sends_one_heartbeat_not_a_burst(self) -> None:
        """Woken 100 s late (a long step), it sends one and schedules the next a period later."""
        schedule = HeartbeatSchedule(10_000, now=0.0)
        assert schedule.take(110.0)
        assert not schedule.take(110.0)
        assert schedule.due == 120.0


class TestCaptures:
    def test_a_dot_path_reads_through_json_in_a_string_and_arrays(self) -> None:
        """Pusher's socket_id sits in a JSON string; Phoenix's status in the fifth array element."""
        pusher = Message('{"event":"pusher:connection_established","data":"{\\"socket_id\\":\\"123.456\\"}"}')
        assert capture_values(parse_captures({"socket_id": "data.socket_id"}), pusher) == {"socket_id": "123.456"}
        phoenix = Message('["1","1","room:lobby","phx_reply",{"status":"ok","response":{"n":7}}]')
        captures = parse_captures({"status": "4.status", "n": "4.response.n", "all": "4.response"})
        assert capture_values(captures, phoenix) == {"status": "ok", "n": "7", "all": '{"n":7}'}

    def test_a_path_that_is_not_there_fails_with_a_named_reason_never_the_payload(self) -> None:
        """The reason names the capture and its path; the message's content never shows."""
        reason = capture_values(parse_captures({"sid": "data.sid"}), Message('{"data":{"secret-ish":"v4lue"}}'))
        assert reason == "capture sid: no data.sid in the message"
        assert capture_values(parse_captures({"sid": "a"}), Message("v4lue")) == "capture sid: the message is not JSON"

    def test_later_steps_use_captures_and_ref(self) -> None:
        """`${name}` and `${ref}` are substituted in one pass: a captured value holding `${token}` stays as it is."""
        variables = Variables(user=3, token="T", values={"sid": "${token}", "ref": "4"})
        assert substitute({"id": "${ref}", "s": "${sid}", "u": "${user}"}, variables) == {
            "id": "4",
            "s": "${token}",
            "u": "3",
        }
        step = make_step("expect_regex", r"^ok ${sid}$", "r", known=["sid"])
        assert step.regex(Variables(values={"sid": "a.b"})).pattern == r"^ok a\.b$"

    def test_captures_are_checked_when_the_file_loads(self) -> None:
        """A whole file with split, reply, heartbeat, ${ref} and a capture loads; its steps know the capture."""
        conversation = load_conversation_text(SIGNALR_YAML, "s.yaml")
        assert conversation.hold[1].captures[0].name == "answer"
        assert conversation.heartbeat is not None and conversation.heartbeat.every_ms == 15000
        assert len(conversation.replies) == 1


class TestJsonInAString:
    def test_a_mapping_matches_a_string_holding_json(self) -> None:
        """Pusher's data and ActionCable's identifier are JSON text; a mapping subset matches them decoded."""
        pusher = {"event": "pusher_internal:subscription_succeeded", "channel": "c", "data": "{}"}
        assert contains({"event": "pusher_internal:subscription_succeeded", "data": {}}, pusher)
        cable = {"type": "confirm_subscription", "identifier": '{"channel":"ChatChannel","room":"1"}'}
        assert contains({"identifier": {"channel": "ChatChannel"}}, cable)
        assert not contains({"identifier": {"channel": "Other"}}, cable)
        assert not contains({"data": {}}, {"data": "not json {"})
        assert contains({"data": "{}"}, pusher)  # a string still matches a string


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reply: [{when: {type: 6}, send: x, every: 1}]", "c.yaml: reply rule 1: unknown key 'every'"),
        ("heartbeat: {every_ms: 5, send: x}", "c.yaml: heartbeat every_ms must be >= 10 (got 5)"),
        ("reply: [{when: {}, send: '{}'}]", "c.yaml: reply rule 1: when: {} would answer every JSON object"),
        ("heartbeat: {every_ms: 1000, sned: x}", "c.yaml: heartbeat: unknown key 'sned'"),
        (
            "open: [{expect: {type: welcome}, capture: {sid: type.sid}}]",
            "c.yaml: open step 1: capture sid: type.sid can never match",
        ),
        (
            "open: [{expect: {data: [1]}, capture: {x: data.3}}]",
            "c.yaml: open step 1: capture x: data.3 can never match",
        ),
        (
            "open: [{expect_text: hello, capture: {x: a}}]",
            "c.yaml: open step 1: capture x: expect_text here is not JSON",
        ),
        ("open: [{send: a, capture: {x: a}}]", "c.yaml: open step 1: capture needs a step that waits"),
        ("open: [{send: '${sid}'}, {expect: {}, capture: {sid: a}}]", "c.yaml: open step 1: unknown variable ${sid}"),
        ("open: [{expect: {}, capture: {user: a}}]", "c.yaml: open step 1: capture: user is a built-in variable"),
        ("terminate: true", "c.yaml: terminate: needs split"),
        ("split: ''", "c.yaml: split: must be a non-empty string"),
    ],
)
def test_a_bad_primitive_is_one_line_naming_the_file(text: str, message: str) -> None:
    """Each mistake in split, reply, heartbeat or capture is one line starting with the file (and the step)."""
    with pytest.raises(ConversationError) as error:
        load_conversation_text(text, "c.yaml")
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_a_capture_the_subset_leaves_open_loads() -> None:
    """A path under a key the expect does not pin, or into a pinned JSON string, can match: the file loads."""
    load_conversation_text("open: [{expect: {event: e}, capture: {sid: data.socket_id}}]", "c.yaml")
    load_conversation_text("open: [{expect: {data: '{\"a\":{}}'}, capture: {x: data.a.b}}]", "c.yaml")
