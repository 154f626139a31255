"""A minimal WebSocket echo server for the benchmark: one thread, one epoll loop, no WebSocket library.

Fast enough that the generator, not the server, is what a benchmark run measures (the
bundled `refserver` on the `websockets` library tops out well below what one generator core
can drive). It answers the upgrade (Sec-WebSocket-Accept computed), echoes text and binary
frames, answers pings, and answers a close frame with a close frame and then closes TCP
first, so the server, not the client, holds the TIME_WAIT entries, as most servers do.

With `--protocol socketio` it answers Socket.IO instead of echoing, with the bundled
refserver's own decisions (`refserver.socketio_mode.SocketIOSession`: the Engine.IO open
packet, CONNECT answered by CONNECT and a `welcome` event, an EVENT's acknowledgement) on
this loop: the same frames as the refserver in socketio mode, at a fraction of its CPU, and
without its agents, heartbeat or fault modes. Where the refserver would close the connection
(an Engine.IO close packet, a malformed packet) it answers nothing: the benchmark's clients
send neither.

    python -m bench.echo_server --port 0 [--protocol socketio] [--cpu 1]    # prints "listening <port>"
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import select
import socket
import struct
import sys
from collections.abc import Callable
from typing import Protocol

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD_BYTES = 16384  # a longer upgrade request is refused
EPOLLIN = select.EPOLLIN


def _accept_value(request_head: bytes) -> bytes | None:
    for line in request_head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return base64.b64encode(hashlib.sha1(value.strip() + WS_GUID).digest())
    return None


def _frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Parse and remove every whole masked client frame at the start of `buffer`."""
    frames = []
    while len(buffer) >= 2:
        opcode = buffer[0] & 0x0F
        masked = buffer[1] & 0x80
        length = buffer[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                break
            (length,) = struct.unpack_from("!H", buffer, 2)
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                break
            (length,) = struct.unpack_from("!Q", buffer, 2)
            offset = 10
        mask_end = offset + (4 if masked else 0)
        if len(buffer) < mask_end + length:
            break
        payload = bytes(buffer[mask_end : mask_end + length])
        if masked and length:
            mask = bytes(buffer[offset:mask_end])
            key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
            payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        del buffer[: mask_end + length]
        frames.append((opcode, payload))
    return frames


def _frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        return bytes((0x80 | opcode, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, length) + payload


class Answerer(Protocol):
    """What one connection answers, past the handshake."""

    opening: bytes  # frames sent right after the 101

    def answer(self, opcode: int, payload: bytes) -> bytes:
        """The frames answering one text or binary frame (none: b"")."""
        ...


class Echo:
    """One connection's answers: text and binary frames echoed (pings and closes are the loop's)."""

    opening = b""  # nothing is sent before the client speaks

    def answer(self, opcode: int, payload: bytes) -> bytes:
        return _frame(opcode, payload)


class SocketIOAnswers:
    """One Engine.IO connection, answered as the bundled refserver's Socket.IO mode answers it."""

    def __init__(self) -> None:
        from refserver.socketio_mode import SocketIOSession  # the refserver's pure protocol state (socketio mode only)

        self.session = SocketIOSession(expected_token=None, handshake_authorized=True)  # no auth asked
        self.opening = _frame(0x1, self.session.open_packet().encode())  # the Engine.IO open packet

    def answer(self, opcode: int, payload: bytes) -> bytes:
        message = payload.decode("utf-8", "replace") if opcode == 0x1 else payload
        return b"".join(_frame(0x1, text.encode()) for text in self.session.receive(message).send)


ANSWERERS: dict[str, Callable[[], Answerer]] = {"echo": Echo, "socketio": SocketIOAnswers}


def serve(listener: socket.socket, new_connection: Callable[[], Answerer] = Echo) -> None:
    """Serve forever on `listener` (until killed).

    `new_connection()` makes each connection's `Answerer`; the loop itself answers pings
    and close frames.
    """
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), EPOLLIN)
    conns: dict[int, socket.socket] = {}  # fd -> connection
    buffers: dict[int, bytearray] = {}  # fd -> bytes read and not yet handled
    answerers: dict[int, Answerer] = {}  # fds past the handshake -> their answerer
    listen_fd = listener.fileno()

    def drop(fd: int) -> None:
        sock = conns.pop(fd, None)
        buffers.pop(fd, None)
        answerers.pop(fd, None)
        if sock is not None:
            try:
                poller.unregister(fd)
            except OSError:
                pass
            sock.close()

    while True:
        for fd, _events in poller.poll(1.0, 1024):
            if fd == listen_fd:
                for _ in range(256):
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # EMFILE and friends: try again on the next event
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    cfd = conn.fileno()
                    conns[cfd] = conn
                    buffers[cfd] = bytearray()
                    poller.register(cfd, EPOLLIN)
                continue
            sock = conns.get(fd)
            if sock is None:
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                drop(fd)
                continue
            if not data:
                drop(fd)
                continue
            buffer = buffers[fd]
            buffer += data
            try:
                answerer = answerers.get(fd)
                if answerer is None:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > MAX_HEAD_BYTES:
                            drop(fd)
                        continue
                    accept = _accept_value(bytes(buffer[:end]))
                    del buffer[: end + 4]
                    if accept is None:
                        sock.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        drop(fd)
                        continue
                    answerer = answerers[fd] = new_connection()
                    sock.send(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + answerer.opening
                    )
                out = []
                closing = False
                for opcode, payload in _frames(buffer):
                    if opcode in (0x1, 0x2):
                        out.append(answerer.answer(opcode, payload))
                    elif opcode == 0x9:
                        out.append(_frame(0xA, payload))
                    elif opcode == 0x8:
                        out.append(_frame(0x8, payload[:2]))
                        closing = True
                        break
                if out:
                    sock.send(b"".join(out))  # small replies: the socket buffer always has room
                if closing:
                    drop(fd)  # the server closes TCP first: it holds the TIME_WAIT
            except OSError:
                drop(fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--protocol", choices=sorted(ANSWERERS), default="echo", help="what the server speaks")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU core")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {args.cpu})
        except OSError:
            pass
    listener = socket.create_server((args.host, args.port), backlog=4096, reuse_port=False)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    try:
        serve(listener, ANSWERERS[args.protocol])
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
