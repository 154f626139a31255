"""Binary frames in conversations: `send_binary` and `expect_binary`, and text and binary never breaking each other."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from scenarios.conversation import (
    MATCHED,
    NOT_IT,
    RAW_ACTIONS,
    ConversationError,
    Message,
    Variables,
    binary_bytes,
    json_expectation,
    make_step,
    parse_conversation,
    regex_expectation,
    text_expectation,
)
from scenarios.exchange import StepFailed, Talk
from scenarios.handshake import adopt
from scenarios.protocols import BINARY_KIND, ConnectionFraming
from scenarios.ws_session import WebSocketSession
from tests.support.ws_frames import FrameReader, frame

TEXT, BINARY = 0x1, 0x2
TIMEOUT_S = 2.0


def _parse(steps: str) -> list:
    import yaml

    return list(parse_conversation(yaml.safe_load(steps), "f.yaml", RAW_ACTIONS).open)


def test_send_binary_takes_hex_or_base64_said_by_a_key() -> None:
    """`{hex: "0a 0b"}` and `{base64: "Cgs="}` are the same two bytes."""
    assert binary_bytes({"hex": "0a 0b"}) == b"\x0a\x0b"
    assert binary_bytes({"base64": "Cgs="}) == b"\x0a\x0b"


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("send_binary: 0a0b", "send_binary takes {hex: ...} or {base64: ...}"),
        ("send_binary: {hex: 0a, base64: Cg==}", "send_binary takes {hex: ...} or {base64: ...}"),
        ("send_binary: {hex: zz}", "send_binary: not valid hex"),
        ("send_binary: {base64: '***'}", "send_binary: not valid base64"),
        ("expect_binary: {hex: 0a}", "expect_binary takes hex digits in a string (quote them)"),
        ("expect_binary: 0g", "expect_binary: not valid hex"),
    ],
)
def test_a_bad_binary_step_is_one_line_naming_the_step(step: str, error: str) -> None:
    """A bad value is refused when the file loads, naming file, part and step."""
    with pytest.raises(ConversationError) as raised:
        _parse(f"open:\n  - {step}\n")
    assert str(raised.value) == f"f.yaml: open step 1: {error}"


def test_text_expectations_skip_binary_messages_and_binary_ones_skip_text() -> None:
    """A binary message is not it for expect, expect_text or expect_regex (even `.*`), and text is not it for binary."""
    binary = Message("", BINARY_KIND, data=b"{}")
    for expectation in (json_expectation({}), text_expectation(""), regex_expectation(__import__("re").compile(".*"))):
        assert expectation.check(binary) is NOT_IT
        assert expectation.timeout_reason() == "expect timed out: no message matched"
    framing = ConnectionFraming()
    wanted = framing.expectation(make_step("expect_binary", "0a0b", "b"), Variables())
    assert wanted is not None
    assert wanted.check(Message("0a0b")) is NOT_IT
    assert wanted.check(Message("", BINARY_KIND, data=b"\x0a\x0c")) is NOT_IT
    assert wanted.check(Message("", BINARY_KIND, data=b"\x0a\x0b\x99")) is MATCHED


@pytest.fixture
def talk_and_server() -> Iterator[tuple[Talk, socket.socket, list]]:
    """A Talk on an adopted connection (raw framing), the server's end of it, and the rows it reported."""
    near, far = socket.socketpair()
    far.settimeout(TIMEOUT_S)
    session = WebSocketSession("ws://127.0.0.1/", timeout_s=TIMEOUT_S)
    session._ws = adopt(near, 101, None, b"", TIMEOUT_S)
    rows: list = []
    talk = Talk(session, ConnectionFraming(), Variables(), lambda *row: rows.append(row), TIMEOUT_S)
    try:
        yield talk, far, rows
    finally:
        near.close()
        far.close()


def _client_frames(far: socket.socket, count: int) -> list[tuple[int, bytes]]:
    reader = FrameReader(lambda: far.recv(4096), b"")
    frames = []
    for _ in range(count):
        got = reader.next_frame()
        assert got is not None
        frames.append(got)
    return frames


def test_a_binary_frame_between_text_messages_is_skipped_by_a_text_expect(talk_and_server) -> None:
    """Server: binary, then text; expect_text matches the text; then expect_binary gets the next binary frame."""
    talk, far, rows = talk_and_server
    far.sendall(frame(BINARY, b"\xff\x02") + frame(TEXT, b"hello") + frame(BINARY, b"\x0a\x0b\x0c"))
    assert talk.expect_text("hello", name="text") == "hello"
    assert talk.expect_binary(b"\x0a\x0b", name="bin") == b"\x0a\x0b\x0c"
    assert [(name, length, failure) for name, _, length, failure in rows] == [("text", 5, None), ("bin", 3, None)]
    assert talk.messages_received == 3


def test_send_binary_writes_a_binary_frame_and_send_a_text_one(talk_and_server) -> None:
    """The client's frames: opcode 2 with the bytes, opcode 1 with the text."""
    talk, far, _rows = talk_and_server
    talk.send_binary(b"\x00\xff")
    talk.send("hi")
    assert _client_frames(far, 2) == [(BINARY, b"\x00\xff"), (TEXT, b"hi")]


def test_an_expect_binary_that_only_sees_text_times_out_naming_no_payload(talk_and_server) -> None:
    """Only text arrives: the binary expect fails `expect timed out: no message matched`."""
    talk, far, rows = talk_and_server
    far.sendall(frame(TEXT, b"secret-payload"))
    with pytest.raises(StepFailed):
        talk.expect_binary(b"\x0a", name="bin", timeout_ms=300)
    assert rows[-1][0] == "bin"
    assert rows[-1][3].message == "expect timed out: no message matched"


def test_a_binary_frame_of_utf8_text_is_text_too_and_other_bytes_are_not() -> None:
    """Raw framing: UTF-8 bytes are a text message keeping its bytes; other bytes are a binary message only."""
    framing = ConnectionFraming()
    _, (text,) = framing.receive_binary(b"PING\r\n")
    assert (text.text, text.data) == ("PING\r\n", b"PING\r\n")
    assert text_expectation("PING\r\n").check(text) is MATCHED
    _, (raw,) = framing.receive_binary(b"\xff\x00")
    assert (raw.kind, raw.data) == (BINARY_KIND, b"\xff\x00")
    assert text_expectation("").check(raw) is NOT_IT
