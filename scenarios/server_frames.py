"""The frames a server sends, as RFC 6455 section 5 sets them out, read from bytes as they come: sans-I/O.

`ServerFrames` takes the bytes a connection reads (`feed`) and gives whole messages
(`next`): a text or binary message, its fragments joined (5.4), or a control frame (ping,
pong, close) as it arrives, between fragments too. It never reads a socket: the session
does, and asks again. The counterpart of `scenarios.client_frames`, which writes the
client's frames.

What the client must refuse is a `FrameError`, raised before the payload is waited for
when the header already says so:
- a frame or fragmented message longer than `max_message_bytes` ("frame too large");
- reserved bits set (no extension is negotiated), an unknown opcode, a control frame that
  is fragmented or longer than 125 bytes, a continuation with no message to continue, a new
  message inside a fragmented one, a masked frame (5.1: a client closes the connection
  when a server masks), and a close frame whose payload is one byte or whose code no
  endpoint may send (7.4) ("protocol error").
"""

from __future__ import annotations

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
CONTROL_OPCODES = frozenset((OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG))
MAX_CONTROL_PAYLOAD_BYTES = 125  # 5.5: a control frame carries at most this
MAX_MESSAGE_BYTES = 1024 * 1024  # the largest message the client reads by default (the reference server's cap too)
TOO_LARGE = "frame too large"
PROTOCOL_ERROR = "protocol error"
_FIN = 0x80
_RESERVED_BITS = 0x70
_MASKED = 0x80


def close_code_allowed(code: int) -> bool:
    """Whether a close frame may carry `code` (7.4): the defined codes an endpoint sends, 3000-4999."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class FrameError(Exception):
    """A frame the client must refuse; the text is `TOO_LARGE` or `PROTOCOL_ERROR`, never payload."""


class ServerFrames:
    """One connection's incoming bytes to messages (opcode, payload); see the module docstring."""

    __slots__ = ("max_message_bytes", "_buffer", "_opcode", "_parts", "_size")

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes  # a longer message is refused from its header
        self._buffer = b""  # bytes read and not yet given out as frames
        self._opcode: int | None = None  # the opcode of the fragmented message in progress
        self._parts: list[bytes] = []  # its fragments so far
        self._size = 0  # their length

    @property
    def buffered(self) -> bool:
        """Whether bytes wait to be read as frames (a message may be starting)."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add bytes read from the connection."""
        self._buffer = self._buffer + data if self._buffer else data

    def next(self) -> tuple[int, bytes] | None:
        """The next message or control frame (opcode, payload); None until more bytes come. Raises FrameError."""
        while True:
            frame = self._frame()
            if frame is None:
                return None
            fin, opcode, payload = frame
            if opcode >= OPCODE_CLOSE:
                return opcode, payload
            if opcode == OPCODE_CONTINUATION:
                if self._opcode is None:
                    raise FrameError(PROTOCOL_ERROR)  # nothing to continue
            elif self._opcode is not None:
                raise FrameError(PROTOCOL_ERROR)  # a new message inside a fragmented one
            elif fin:
                return opcode, payload  # a whole message in one frame: most of them
            else:
                self._opcode = opcode
            self._parts.append(payload)
            self._size += len(payload)
            if fin:
                whole = (self._opcode, b"".join(self._parts))
                self._opcode, self._parts, self._size = None, [], 0
                return whole

    def _frame(self) -> tuple[int, int, bytes] | None:
        """The next whole frame (FIN bit, opcode, payload), consumed; None when its bytes have not all come."""
        buffer = self._buffer
        available = len(buffer)
        if available < 2:
            return None
        first, second = buffer[0], buffer[1]
        opcode = first & 0x0F
        if first & _RESERVED_BITS or second & _MASKED:
            raise FrameError(PROTOCOL_ERROR)
        length = second & 0x7F
        start = 2
        if length == 126:
            if available < 4:
                return None
            length, start = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if available < 10:
                return None
            length, start = int.from_bytes(buffer[2:10], "big"), 10
        fin = first & _FIN
        if opcode in CONTROL_OPCODES:
            if not fin or length > MAX_CONTROL_PAYLOAD_BYTES:
                raise FrameError(PROTOCOL_ERROR)
        elif opcode > OPCODE_BINARY:
            raise FrameError(PROTOCOL_ERROR)  # reserved opcodes 3-7 and 0xB-0xF
        elif self._size + length > self.max_message_bytes:
            raise FrameError(TOO_LARGE)  # refused unread
        end = start + length
        if available < end:
            return None
        payload = buffer[start:end]
        self._buffer = buffer[end:] if end < available else b""
        if (
            opcode == OPCODE_CLOSE
            and length
            and (length == 1 or not close_code_allowed(int.from_bytes(payload[:2], "big")))
        ):
            raise FrameError(PROTOCOL_ERROR)
        return fin, opcode, payload
