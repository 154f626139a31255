"""A conversation's `stream:`: which pushes form each user's ordered stream, and where their sequence number is.

Pure: a decoded message in, its sequence number (or "not a stream message", or "unreadable")
out. Counting what was lost is `scenarios.continuity`'s.

    stream:
      event: tick          # Socket.IO: the event's name; seq is read from its first argument
      seq: n               # a dot path (list items by index: items.0.seq)
    stream:
      match: {type: tick}  # raw and graphql-ws: a JSON subset of the message
      seq: data.seq
    stream:
      topic: flap/+        # MQTT: a topic filter (wildcards); seq is read in the JSON payload
      seq: seq

    stream:
      regex: '^MESSAGE\n(?:.+\n)*\nseq (?P<seq>[0-9]+)'   # raw text protocols (STOMP): a pattern
                                                          # searched in each message's text; its group
                                                          # seq (or its only group) is the number

A sequence number is an integer or a string of digits. Without `match` or `regex` (raw,
graphql-ws), every JSON message that has the `seq` path is a stream message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scenarios.conversation import MISSING, ConversationError, Message, contains, follow_path
from scenarios.file_keys import reject_unknown_keys
from scenarios.protocols.mqtt import check_topic_filter, topic_matches

STREAM_KEYS = ("seq", "event", "topic", "match", "regex")
KIND_EVENT = "event"  # Socket.IO's event messages (scenarios.protocols.socketio.KIND_EVENT)
KIND_PUBLISH = "publish"  # MQTT's PUBLISH messages: the payload as text, the topic as key
_DIGITS = re.compile(r"-?[0-9]+")


class _Unreadable:
    """A stream message whose sequence number is missing or not a number."""

    def __repr__(self) -> str:
        return "UNREADABLE"


NOT_STREAM = None  # seq_of: the message is not one of the stream's
UNREADABLE: Any = _Unreadable()  # seq_of: a stream message without a readable number
_MISSING = object()


@dataclass(frozen=True)
class StreamSpec:
    """Which messages form the stream (by event, topic or JSON subset) and the path of their number."""

    seq: tuple[str, ...]  # the dot path of the sequence number, split (empty with `regex`)
    event: str | None = None  # Socket.IO: the event's name
    topic: str | None = None  # MQTT: the topic filter (wildcards)
    match: Any = None  # raw, graphql-ws (and a Socket.IO event's first argument): a JSON subset
    has_match: bool = False  # whether `match` was given
    regex: re.Pattern[str] | None = None  # raw text protocols: which messages, and the number's group
    seq_group: int | str = 1  # the group of `regex` that holds the number: seq, or the only one

    def seq_of(self, message: Message) -> Any:
        """The message's sequence number (an int), NOT_STREAM, or UNREADABLE."""
        if self.regex is not None:
            found = self.regex.search(message.text)
            if found is None:
                return NOT_STREAM
            value = found.group(self.seq_group)
            return UNREADABLE if value is None else _number(value)
        if self.event is not None:
            if message.kind != KIND_EVENT or message.key != self.event:
                return NOT_STREAM
            args = message.args
            data = args[0] if args else _MISSING
            if self.has_match and (data is _MISSING or not contains(self.match, data)):
                return NOT_STREAM
            return UNREADABLE if data is _MISSING else _number(follow_path(data, self.seq))
        if self.topic is not None:
            if message.kind != KIND_PUBLISH or not isinstance(message.key, str):
                return NOT_STREAM
            if not topic_matches(self.topic, message.key):
                return NOT_STREAM
            try:  # the topic says it is the stream's: a payload without a number is unreadable
                data = message.json()
            except ValueError:
                return UNREADABLE
            if self.has_match and not contains(self.match, data):
                return NOT_STREAM
            return _number(follow_path(data, self.seq))
        try:
            data = message.json()
        except ValueError:
            return NOT_STREAM
        if self.has_match:
            if not contains(self.match, data):
                return NOT_STREAM
            return _number(follow_path(data, self.seq))
        value = follow_path(data, self.seq)
        return NOT_STREAM if value is MISSING else _number(value)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return UNREADABLE
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return UNREADABLE


def parse_stream(value: Any, protocol: str) -> StreamSpec:
    """The `stream:` of a conversation for `protocol`; ConversationError (starting `stream:`) when bad."""
    if not isinstance(value, Mapping):
        raise ConversationError("stream: must be a mapping with seq: and event:, topic: or match:")
    reject_unknown_keys("stream", value, STREAM_KEYS)
    if "regex" in value:
        return _regex_stream(value, protocol)
    seq = value.get("seq")
    if not isinstance(seq, str) or not seq.strip() or any(not part for part in seq.strip().split(".")):
        raise ConversationError("stream: seq: must be a dot path into the message, such as data.seq")
    event, topic = value.get("event"), value.get("topic")
    if protocol == "socketio":
        if not isinstance(event, str) or not event:
            raise ConversationError("stream: event: names the Socket.IO event of the stream (required)")
    elif event is not None:
        raise ConversationError("stream: event: is for protocol socketio; use match: (a JSON subset)")
    if protocol == "mqtt":
        if not isinstance(topic, str):
            raise ConversationError("stream: topic: names the MQTT topic filter of the stream (required)")
        try:
            check_topic_filter(topic)
        except ValueError as error:
            raise ConversationError(f"stream: topic: {error}") from None
    elif topic is not None:
        raise ConversationError("stream: topic: is for protocol mqtt; use match: (a JSON subset)")
    has_match = "match" in value
    match = value.get("match")
    if has_match and not isinstance(match, (Mapping, list)):
        raise ConversationError("stream: match: must be a mapping or a list (a JSON subset)")
    return StreamSpec(
        seq=tuple(seq.strip().split(".")),
        event=event,
        topic=topic,
        match=match,
        has_match=has_match,
    )


def _regex_stream(value: Mapping[str, Any], protocol: str) -> StreamSpec:
    """`stream: {regex: ...}`: raw only, alone, a pattern that compiles with the number's group."""
    if protocol != "raw":
        raise ConversationError("stream: regex: is for raw conversations (text protocols such as STOMP)")
    others = [key for key in STREAM_KEYS if key != "regex" and key in value]
    if others:
        raise ConversationError(
            f"stream: regex: takes no {others[0]}: (its group seq, or its only group, holds the number)"
        )
    pattern = value["regex"]
    if not isinstance(pattern, str) or not pattern:
        raise ConversationError("stream: regex: must be a regular expression (a string)")
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ConversationError(f"stream: regex: does not compile: {error}") from None
    if "seq" in regex.groupindex:
        group: int | str = "seq"
    elif regex.groups == 1:
        group = 1
    else:
        raise ConversationError("stream: regex: needs a group named seq, (?P<seq>[0-9]+), or exactly one group")
    return StreamSpec(seq=(), regex=regex, seq_group=group)
