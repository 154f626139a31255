"""A conversation's stream: which messages belong to it, their sequence numbers, and bad stream: sections."""

from __future__ import annotations

import pytest

from scenarios.conversation import ConversationError, Message, Variables
from scenarios.protocols import load_conversation, load_conversation_text
from scenarios.stream import NOT_STREAM, UNREADABLE, parse_stream
from tests.support.locust_process import ROOT


def test_a_raw_stream_matches_a_json_subset_and_reads_a_dot_path() -> None:
    """A message containing `match` is a stream message; its number is read at the dot path."""
    spec = parse_stream({"match": {"type": "tick"}, "seq": "data.seq"}, "raw")
    assert spec.seq_of(Message('{"type":"tick","data":{"seq":41}}')) == 41
    assert spec.seq_of(Message('{"type":"tick","data":{"seq":"42"}}')) == 42  # a numeric string
    assert spec.seq_of(Message('{"type":"pong"}')) is NOT_STREAM
    assert spec.seq_of(Message("not json")) is NOT_STREAM
    assert spec.seq_of(Message('{"type":"tick","data":{}}')) is UNREADABLE
    assert spec.seq_of(Message('{"type":"tick","data":{"seq":"4x"}}')) is UNREADABLE
    assert spec.seq_of(Message('{"type":"tick","data":{"seq":true}}')) is UNREADABLE


def test_without_match_every_message_with_the_path_is_in_the_stream() -> None:
    """No `match`: messages that have the path are the stream's; list items are reached by index."""
    spec = parse_stream({"seq": "items.1.n"}, "raw")
    assert spec.seq_of(Message('{"items":[{"n":1},{"n":2}]}')) == 2
    assert spec.seq_of(Message('{"type":"auth_ok"}')) is NOT_STREAM


def test_a_socketio_stream_reads_the_first_argument_of_its_event() -> None:
    """Socket.IO: the event named by `event`, its number in the first argument; other events are not the stream."""
    spec = parse_stream({"event": "tick", "seq": "n"}, "socketio")
    assert spec.seq_of(Message("", "event", "tick", [{"n": 7}, "offset-1"])) == 7
    assert spec.seq_of(Message("", "event", "chat", [{"n": 7}])) is NOT_STREAM
    assert spec.seq_of(Message("", "ack", 0, [{"n": 7}])) is NOT_STREAM
    assert spec.seq_of(Message("", "event", "tick", [])) is UNREADABLE


def test_a_raw_regex_stream_reads_its_number_from_the_group_seq_or_the_only_group() -> None:
    """Text protocols (a STOMP MESSAGE frame): messages the pattern finds are the stream's; the group is the number."""
    frame = "MESSAGE\ndestination:/queue/flap-0-3\nmessage-id:T_0@@session-1@@1\n\nseq 17"
    named = parse_stream({"regex": r"^\s*MESSAGE\n(?:.+\n)*\nseq (?P<seq>\S+)$"}, "raw")
    assert named.seq_of(Message(frame)) == 17
    assert named.seq_of(Message("\n" + frame)) == 17  # a heart-beat EOL before the frame
    assert named.seq_of(Message("RECEIPT\nreceipt-id:sub-3\n\n")) is NOT_STREAM
    assert named.seq_of(Message(frame.replace("seq 17", "seq x7"))) is UNREADABLE
    only = parse_stream({"regex": "(?:tick|tock) #([0-9]+)?"}, "raw")
    assert only.seq_of(Message("tock #5")) == 5
    assert only.seq_of(Message("tick #")) is UNREADABLE  # the group took no part in the match
    assert only.seq_of(Message("tack #5")) is NOT_STREAM


def test_the_stomp_stream_example_reads_frames_with_lf_or_crlf_line_ends() -> None:
    """examples/stomp-stream.yaml: a MESSAGE frame's number, whichever line ends the broker uses (STOMP 1.2)."""
    spec = load_conversation(str(ROOT / "examples" / "stomp-stream.yaml")).stream
    assert spec is not None
    frame = "MESSAGE\ndestination:/queue/flap-0-1\ncontent-length:5\n\nseq 9"
    assert spec.seq_of(Message(frame)) == 9
    assert spec.seq_of(Message("\n" + frame.replace("\n", "\r\n"))) == 9
    assert spec.seq_of(Message("RECEIPT\r\nreceipt-id:sub-1\r\n\r\n")) is NOT_STREAM


@pytest.mark.parametrize(
    ("stream", "protocol", "words"),
    [
        ({"regex": "seq ([0-9]+)"}, "mqtt", "regex: is for raw conversations"),
        ({"regex": "seq ([0-9]+)", "seq": "n"}, "raw", "regex: takes no seq:"),
        ({"regex": "seq ([0-9]+)", "match": {"a": 1}}, "raw", "regex: takes no match:"),
        ({"regex": "seq ([0-9]+"}, "raw", "regex: does not compile"),
        ({"regex": "seq [0-9]+"}, "raw", "regex: needs a group named seq"),
        ({"regex": "(a) ([0-9]+)"}, "raw", "regex: needs a group named seq"),
        ({"regex": ""}, "raw", "regex: must be a regular expression"),
        ("[1]", "raw", "must be a mapping"),
        ({"match": {"type": "tick"}}, "raw", "seq: must be a dot path"),
        ({"seq": "a..b"}, "raw", "seq: must be a dot path"),
        ({"seq": "n", "colour": 1}, "raw", "unknown key 'colour'"),
        ({"seq": "n"}, "socketio", "event: names the Socket.IO event"),
        ({"seq": "n", "event": "tick"}, "raw", "event: is for protocol socketio"),
        ({"seq": "n", "topic": "flap/#"}, "raw", "topic: is for protocol mqtt"),
        ({"seq": "n"}, "mqtt", "topic: names the MQTT topic filter"),
        ({"seq": "n", "topic": "flap/#/x"}, "mqtt", "topic: topic filter: # must be the last level"),
        ({"seq": "n", "match": "tick"}, "raw", "match: must be a mapping or a list"),
    ],
)
def test_a_bad_stream_is_refused_with_one_line(stream: object, protocol: str, words: str) -> None:
    """Each mistake in stream: names the key."""
    with pytest.raises(ConversationError, match=words):
        parse_stream(stream, protocol)


def test_a_conversation_file_names_its_stream_and_resume() -> None:
    """stream: and resume: are top-level keys of a file; a bad one names the file."""
    text = "protocol: socketio\nresume: true\nstream: {event: tick, seq: n}\n"
    conversation = load_conversation_text(text, "s.yaml")
    assert conversation.resume is True
    assert conversation.stream is not None and conversation.stream.event == "tick"
    with pytest.raises(ConversationError, match="^s.yaml: stream: event: names"):
        load_conversation_text("protocol: socketio\nstream: {seq: n}\n", "s.yaml")
    with pytest.raises(ConversationError, match="^s.yaml: resume: must be true or false"):
        load_conversation_text("resume: yes please\n", "s.yaml")


def test_stream_last_is_substituted_from_the_users_stream_and_needs_a_stream() -> None:
    """${stream.last} is the last number of the user's chain ("" before any); a file without a stream is refused."""
    text = 'stream: {match: {type: tick}, seq: seq}\nopen:\n  - send: {type: subscribe, after: "${stream.last}"}\n'
    conversation = load_conversation_text(text, "a.yaml")
    step = conversation.open[0]

    class Carry:
        last: int | None = None

    carry = Carry()
    assert step.resolved(Variables(carry=carry)) == {"type": "subscribe", "after": ""}
    carry.last = 12
    assert step.resolved(Variables(carry=carry)) == {"type": "subscribe", "after": "12"}
    with pytest.raises(ConversationError, match=r"\$\{stream.last\} needs a stream:"):
        load_conversation_text('open:\n  - send: "${stream.last}"\n', "a.yaml")


def test_a_graphql_stream_matches_next_messages_of_its_operation() -> None:
    """graphql-ws: `match` picks the operation's `next` messages; the number is read in their payload."""
    conversation = load_conversation_text(
        "protocol: graphql-ws\nstream: {match: {id: '1', type: next}, seq: payload.data.count}\n", "g.yaml"
    )
    spec = conversation.stream
    assert spec is not None
    assert spec.seq_of(Message('{"id":"1","type":"next","payload":{"data":{"count":5}}}', "next", "1")) == 5
    assert spec.seq_of(Message('{"id":"2","type":"next","payload":{"data":{"count":5}}}', "next", "2")) is NOT_STREAM
    assert spec.seq_of(Message('{"type":"ping"}', "ping")) is NOT_STREAM


def test_an_mqtt_stream_takes_publishes_on_topics_its_filter_matches() -> None:
    """MQTT: PUBLISH messages whose topic the filter matches (wildcards); the number in their JSON payload."""
    spec = parse_stream({"topic": "flap/+", "seq": "seq"}, "mqtt")
    assert spec.seq_of(Message('{"seq": "12"}', "publish", "flap/3")) == 12
    assert spec.seq_of(Message('{"seq": 12}', "publish", "other/3")) is NOT_STREAM
    assert spec.seq_of(Message('{"seq": 12}', "puback", 4)) is NOT_STREAM
    assert spec.seq_of(Message("not json", "publish", "flap/3")) is UNREADABLE  # on the topic: the stream's
    assert spec.seq_of(Message('{"n": 1}', "publish", "flap/3")) is UNREADABLE
