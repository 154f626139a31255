"""The frames a client writes, as RFC 6455 section 5 sets them out: whole (FIN set) and masked.

`client_frame` is pure encoding, its masking key given. The session writes text frames (a
conversation's messages), a close frame and pongs with `masked_frame`; `websocket-client`
reads the server's frames. Written here rather than with `websocket-client`'s
`ABNF.format()`, which costs several times as much per frame (its checks, string building, and
a system call for each masking key; its `set_mask_key` hook would save only the last): at zero
hold a Socket.IO cycle writes four frames.

`MaskKeys` draws the keys from `os.urandom`, the strong source of entropy section 5.3 asks
for, 4 KiB at a time; a forked process (Locust's `--processes`) starts a pool of its own.
"""

from __future__ import annotations

import os
import struct

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PONG = 0xA
FIN = 0x80
MASKED = 0x80
MASK_KEY_BYTES = 4
_KEY_POOL_BYTES = 4096  # keys drawn per os.urandom call
_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")


def client_frame(opcode: int, payload: bytes, mask_key: bytes) -> bytes:
    """One whole frame of `opcode` carrying `payload`, masked with the 4-byte `mask_key`."""
    length = len(payload)
    if length < 126:
        header = bytes((FIN | opcode, MASKED | length))
    elif length < 1 << 16:
        header = _LENGTH_16.pack(FIN | opcode, MASKED | 126, length)
    else:
        header = _LENGTH_64.pack(FIN | opcode, MASKED | 127, length)
    if not length:
        return header + mask_key
    key = (mask_key * (length // MASK_KEY_BYTES + 1))[:length]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return header + mask_key + masked.to_bytes(length, "little")


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One whole frame, masked with the next of the process's keys."""
    return client_frame(opcode, payload, mask_key())


def close_payload(code: int) -> bytes:
    """A close frame's payload: the status code, no reason."""
    return code.to_bytes(2, "big")


class MaskKeys:
    """Masking keys, each 4 fresh bytes of `os.urandom`, drawn a pool at a time."""

    __slots__ = ("_pool", "_next")

    def __init__(self) -> None:
        self._pool = b""  # keys not handed out yet, from _next on
        self._next = 0  # the offset of the next key in the pool

    def __call__(self) -> bytes:
        start = self._next
        if start + MASK_KEY_BYTES > len(self._pool):
            self._pool, start = os.urandom(_KEY_POOL_BYTES), 0
        self._next = start + MASK_KEY_BYTES
        return self._pool[start : start + MASK_KEY_BYTES]

    def forget(self) -> None:
        """Drop the pool (a forked child must not reuse its parent's keys)."""
        self._pool, self._next = b"", 0


mask_key = MaskKeys()  # the process's keys; no greenlet switch can happen while one is drawn
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=mask_key.forget)
