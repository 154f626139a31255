"""The frames the pack writes are the frames RFC 6455 asks of a client: websocket-client writes the same bytes."""

from __future__ import annotations

import os
import select

import pytest
from websocket import ABNF

from scenarios.client_frames import (
    OPCODE_CLOSE,
    OPCODE_PONG,
    OPCODE_TEXT,
    MaskKeys,
    client_frame,
    close_payload,
    mask_key,
)

KEY = b"\x37\xfa\x21\x3d"


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001])
@pytest.mark.parametrize("opcode", [OPCODE_TEXT, OPCODE_CLOSE, OPCODE_PONG])
def test_a_frame_is_byte_for_byte_what_websocket_client_formats(opcode: int, length: int) -> None:
    """Every length encoding (7-bit, 16-bit, 64-bit) and the masking, against the library's encoder as the oracle."""
    payload = os.urandom(length)
    reference = ABNF(1, 0, 0, 0, opcode, 1, payload)
    reference.get_mask_key = lambda _n: KEY
    assert client_frame(opcode, payload, KEY) == reference.format()


def test_a_clean_close_says_1000() -> None:
    assert close_payload(1000) == b"\x03\xe8"


def test_each_key_is_four_fresh_bytes_and_the_pool_refills() -> None:
    keys = MaskKeys()
    drawn = [keys() for _ in range(3000)]  # about three pools
    assert all(len(key) == 4 for key in drawn)
    assert len(set(drawn)) > 2990  # 32 random bits each: a repeat or two at most


def test_a_forgotten_pool_is_not_reused() -> None:
    """A forked child forgets its parent's pool: its next keys are new draws, not the parent's next ones."""
    parent = MaskKeys()
    parent()
    child = MaskKeys()
    child._pool, child._next = parent._pool, parent._next  # what fork copies
    child.forget()
    assert [child() for _ in range(8)] != [parent() for _ in range(8)]


def test_a_forked_child_draws_keys_of_its_own() -> None:
    """The process's keys, after a real fork: the child's next keys are not the parent's next ones."""
    mask_key()  # the parent has a pool
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next keys and leave at once
        os.write(write_end, b"".join(mask_key() for _ in range(8)))
        os._exit(0)
    os.close(write_end)
    child_keys = b""
    try:
        while len(child_keys) < 32 and select.select([read_end], [], [], 10)[0]:  # bounded: never hangs
            child_keys += os.read(read_end, 32 - len(child_keys))
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert len(child_keys) == 32
    assert child_keys != b"".join(mask_key() for _ in range(8))
