"""Reading a server's frames from bytes as they come (RFC 6455 section 5), scripted bytes, no sockets."""

from __future__ import annotations

import struct

import pytest

from scenarios.server_frames import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    PROTOCOL_ERROR,
    TOO_LARGE,
    FrameError,
    ServerFrames,
)
from tests.support.ws_frames import frame

FIN = 0x80


def fragment(opcode: int, payload: bytes, fin: bool) -> bytes:
    """A frame with FIN set or not (short payloads only)."""
    return bytes(((FIN if fin else 0) | opcode, len(payload))) + payload


def read_all(frames: ServerFrames) -> list[tuple[int, bytes]]:
    found = []
    while (message := frames.next()) is not None:
        found.append(message)
    return found


def test_several_frames_in_one_read_are_each_a_message() -> None:
    """A text, a binary and a ping that came in one read come out in order; nothing is left."""
    frames = ServerFrames()
    frames.feed(frame(OPCODE_TEXT, b"hello") + frame(OPCODE_BINARY, b"\x00\x01") + frame(OPCODE_PING, b"beat"))
    assert read_all(frames) == [(OPCODE_TEXT, b"hello"), (OPCODE_BINARY, b"\x00\x01"), (OPCODE_PING, b"beat")]
    assert not frames.buffered


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_a_frame_split_at_every_byte_comes_out_whole_once(size: int) -> None:
    """Each length encoding (7-bit, 16-bit, 64-bit) read byte by byte gives the message only at its last byte."""
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = frame(OPCODE_BINARY, payload)
    frames = ServerFrames()
    step = 1 if size < 300 else 997
    got = []
    for offset in range(0, len(data), step):
        frames.feed(data[offset : offset + step])
        got.extend(read_all(frames))
    assert got == [(OPCODE_BINARY, payload)]


def test_fragments_are_joined_and_control_frames_pass_between_them() -> None:
    """A message in three fragments with a ping between them: the ping first, then the whole message."""
    frames = ServerFrames()
    frames.feed(
        fragment(OPCODE_TEXT, b"he", fin=False)
        + fragment(OPCODE_CONTINUATION, b"ll", fin=False)
        + frame(OPCODE_PING, b"")
        + fragment(OPCODE_CONTINUATION, b"o", fin=True)
        + frame(OPCODE_PONG, b"")
    )
    assert read_all(frames) == [(OPCODE_PING, b""), (OPCODE_TEXT, b"hello"), (OPCODE_PONG, b"")]


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    """Only the header of a 2 MB frame has come: too large already, before any payload."""
    frames = ServerFrames(max_message_bytes=1024 * 1024)
    frames.feed(struct.pack("!BBQ", FIN | OPCODE_BINARY, 127, 2 * 1024 * 1024))
    with pytest.raises(FrameError, match=f"^{TOO_LARGE}$"):
        frames.next()


def test_fragments_over_the_limit_together_are_refused() -> None:
    """Two fragments of 600 bytes under a 1,000-byte limit: the second one's header refuses the message."""
    frames = ServerFrames(max_message_bytes=1000)
    frames.feed(fragment(OPCODE_BINARY, b"", fin=False))
    frames.feed(bytes((OPCODE_CONTINUATION, 126)) + struct.pack("!H", 600) + bytes(600))
    assert frames.next() is None
    frames.feed(bytes((OPCODE_CONTINUATION, 126)) + struct.pack("!H", 600))
    with pytest.raises(FrameError, match=f"^{TOO_LARGE}$"):
        frames.next()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes((FIN | 0x40 | OPCODE_TEXT, 1)) + b"x", id="reserved bit"),
        pytest.param(bytes((FIN | 0x3, 0)), id="reserved data opcode"),
        pytest.param(bytes((FIN | 0xB, 0)), id="reserved control opcode"),
        pytest.param(bytes((OPCODE_PING, 0)), id="fragmented ping"),
        pytest.param(bytes((FIN | OPCODE_PING, 126)) + struct.pack("!H", 126) + bytes(126), id="ping over 125 bytes"),
        pytest.param(fragment(OPCODE_CONTINUATION, b"x", fin=True), id="continuation of nothing"),
        pytest.param(
            fragment(OPCODE_TEXT, b"a", fin=False) + fragment(OPCODE_TEXT, b"b", fin=True), id="message inside message"
        ),
        pytest.param(bytes((FIN | OPCODE_TEXT, 0x80 | 1)) + b"\x00\x00\x00\x00x", id="masked by the server"),
        pytest.param(frame(OPCODE_CLOSE, b"\x03"), id="close with one byte"),
        pytest.param(frame(OPCODE_CLOSE, struct.pack("!H", 1005)), id="close code no endpoint sends"),
        pytest.param(frame(OPCODE_CLOSE, struct.pack("!H", 999)), id="close code below the range"),
    ],
)
def test_frames_a_client_must_refuse_are_protocol_errors(data: bytes) -> None:
    """Each frame RFC 6455 forbids a server to send fails the read, whatever came before it."""
    frames = ServerFrames()
    frames.feed(data)
    with pytest.raises(FrameError, match=f"^{PROTOCOL_ERROR}$"):
        read_all(frames)


@pytest.mark.parametrize(
    "payload", [b"", struct.pack("!H", 1000), struct.pack("!H", 4000) + b"bye", struct.pack("!H", 1014)]
)
def test_close_frames_an_endpoint_may_send_are_read(payload: bytes) -> None:
    """No payload, a normal close, an application code with a reason, the last defined code: each is read as is."""
    frames = ServerFrames()
    frames.feed(frame(OPCODE_CLOSE, payload))
    assert frames.next() == (OPCODE_CLOSE, payload)
