"""WebSocket wire pieces for the hand-written test servers: the accept key, server frames, a frame reader."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for_key(key: str) -> str:
    """The Sec-WebSocket-Accept answering a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server frame (FIN set)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


class FrameReader:
    """Reads (masked) client frames through `recv`; None at EOF."""

    def __init__(self, recv: Callable[[], bytes], buffered: bytes) -> None:
        self._recv = recv  # one read from the socket; b"" at EOF
        self._buffer = buffered  # bytes read but not yet parsed

    def _read(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            chunk = self._recv()
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def next_frame(self) -> tuple[int, bytes] | None:
        """(opcode, unmasked payload) of the next frame, or None at EOF."""
        head = self._read(2)
        if head is None:
            return None
        opcode = head[0] & 0x0F
        masked = head[1] & 0x80
        length = head[1] & 0x7F
        if length in (126, 127):
            extended = self._read(2 if length == 126 else 8)
            if extended is None:
                return None
            length = struct.unpack("!H" if length == 126 else "!Q", extended)[0]
        mask = self._read(4) if masked else b"\0\0\0\0"
        payload = self._read(length) if length else b""
        if mask is None or payload is None:
            return None
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
