"""Misbehaving WebSocket servers on raw TCP sockets, for the pack's resilience tests.

Each `HostileServer` listens on 127.0.0.1 port 0 and misbehaves in one `mode` on every
connection: it never answers, answers the wrong thing, sends garbage or a frame too big
to read, ignores the closing handshake, closes or resets mid-handshake, or never accepts.
One thread per connection; every blocking call has a timeout, and `stop()` closes every
socket, so a test never hangs on the server's side.
"""

from __future__ import annotations

import base64
import socket
import struct
import threading
import time
from collections.abc import Callable

from tests.servers.common import accepted_until
from tests.support.ws_frames import FrameReader, accept_for_key
from tests.support.ws_frames import frame as server_frame

POLL_S = 0.1  # how often blocked threads look at `stop`
IO_TIMEOUT_S = 30.0  # bound on a read the client should answer long before
HUGE_FRAME_BYTES = 100 * 1024 * 1024  # the length the huge frame announces
TRICKLE_INTERVAL_S = 0.2  # one byte this often, for frames sent slowly
TRICKLE_FRAME_BYTES = 200  # the slow frame's real length: 40 s at one byte per 0.2 s

# The modes: what the server does with each connection.
SILENT = "silent"  # accepts, reads the request, never answers
HTTP_200 = "http200"  # answers the upgrade with HTTP 200 and a page
BAD_ACCEPT = "bad_accept"  # answers 101 with a wrong Sec-WebSocket-Accept
GARBAGE_FRAMES = "garbage_frames"  # a valid 101, then bytes that are no valid frame
HUGE_FRAME = "huge_frame"  # a valid 101; each message gets a frame header announcing 100 MB, then a trickle
SLOW_FRAME = "slow_frame"  # a valid 101; each message gets a small frame sent one byte at a time
NO_CLOSE_REPLY = "no_close_reply"  # echoes, but never answers a close frame (and keeps the socket)
CLOSE_MID_HANDSHAKE = "close_mid_handshake"  # sends half of the 101, then a FIN
RESET_ALL = "reset_all"  # resets every connection (SO_LINGER 0) right after the request
BLACKHOLE = "blackhole"  # a full listen backlog that is never accepted: SYNs go unanswered
REJECT_ECHOING_REQUEST = "reject_echoing_request"  # HTTP 401 whose body repeats the request (URL, headers)

MODES = (
    SILENT,
    HTTP_200,
    BAD_ACCEPT,
    GARBAGE_FRAMES,
    HUGE_FRAME,
    SLOW_FRAME,
    NO_CLOSE_REPLY,
    CLOSE_MID_HANDSHAKE,
    RESET_ALL,
    BLACKHOLE,
    REJECT_ECHOING_REQUEST,
)

# A frame no client may accept: FIN with all three reserved bits, opcode 0xF, length 0;
# the rest is noise. Fixed, so the failure message is the same on every run.
GARBAGE = b"\xff\x00" + bytes((i * 97 + 13) % 256 for i in range(62))


class _Stopped(Exception):
    """The server is stopping: a connection thread unwinds."""


class HostileServer:
    """A server on 127.0.0.1:0 that misbehaves in `mode` on every connection."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode  # how every connection is (mis)treated
        self.accepted = 0  # connections accepted so far
        self.requests: list[bytes] = []  # every upgrade request read, raw (for the secrets tests)
        self._lock = threading.Lock()  # guards `accepted`, `requests` and `_sockets`
        self._stopping = threading.Event()  # set by stop()
        self._sockets: list[socket.socket] = []  # every accepted socket, closed by stop()
        self._threads: list[threading.Thread] = []  # the accept thread and connection threads
        # Backlog 0 for the black hole: the kernel queues one connection, the filler below.
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=0 if mode == BLACKHOLE else 128)
        self._listener.settimeout(POLL_S)
        self.port: int = self._listener.getsockname()[1]  # the bound port
        self._fillers: list[socket.socket] = []  # black hole: connections that keep the queue full

    @property
    def url(self) -> str:
        """The ws:// URL of the server."""
        return f"ws://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving (for the black hole: fill the accept queue)."""
        if self.mode == BLACKHOLE:
            self._fill_backlog()
            return
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        """Stop accepting, close every socket, wait (bounded) for the threads."""
        self._stopping.set()
        with self._lock:
            sockets = [*self._sockets, *self._fillers]
        for sock in sockets:
            _close(sock)
        _close(self._listener)
        for thread in list(self._threads):
            thread.join(timeout=2)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _fill_backlog(self) -> None:
        """Connect until the kernel stops answering SYNs: then every new connect hangs."""
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)
        time.sleep(0.2)  # the handshakes the kernel will complete are done by now

    # --- the server threads ----------------------------------------------------------

    def _accept_loop(self) -> None:
        for sock in accepted_until(self._listener, self._stopping):
            sock.settimeout(POLL_S)
            with self._lock:
                self.accepted += 1
                self._sockets.append(sock)
            self._spawn(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._misbehave(sock)
        except (_Stopped, OSError):
            pass
        finally:
            if self.mode != RESET_ALL:
                _close(sock)

    def _recv(self, sock: socket.socket, size: int, deadline_s: float = IO_TIMEOUT_S) -> bytes:
        """One recv that wakes up for `stop`; b"" at EOF."""
        end = time.monotonic() + deadline_s
        while True:
            if self._stopping.is_set():
                raise _Stopped
            try:
                return sock.recv(size)
            except TimeoutError:
                if time.monotonic() > end:
                    raise
                continue

    def _read_request(self, sock: socket.socket) -> tuple[bytes, bytes] | None:
        """The upgrade request's head and any bytes after it; None if the client left first."""
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self._recv(sock, 4096)
            if not chunk:
                return None
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        with self._lock:
            self.requests.append(head)
        return head, rest

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Stopped

    def _misbehave(self, sock: socket.socket) -> None:
        request = self._read_request(sock)
        if request is None:
            return
        head, rest = request
        mode = self.mode
        if mode == SILENT:
            self._hold(sock)
        elif mode == HTTP_200:
            sock.sendall(_http(200, "OK", b"<html><body>this is not a WebSocket server</body></html>"))
            self._hold(sock)
        elif mode == REJECT_ECHOING_REQUEST:
            sock.sendall(_http(401, "Unauthorized", b"unauthorized request:\r\n" + head))
        elif mode == BAD_ACCEPT:
            sock.sendall(_switching(base64.b64encode(b"not the right accept").decode()))
            self._hold(sock)
        elif mode == CLOSE_MID_HANDSHAKE:
            sock.sendall(_switching(_accept_for(head))[:40])
            sock.shutdown(socket.SHUT_WR)
            self._hold(sock)
        elif mode == RESET_ALL:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            _close(sock)
        else:
            sock.sendall(_switching(_accept_for(head)))
            if mode == GARBAGE_FRAMES:
                sock.sendall(GARBAGE)
                self._hold(sock)
            else:
                self._converse(sock, rest)

    def _converse(self, sock: socket.socket, buffered: bytes) -> None:
        """Read client frames and answer in the server's mode, until the client leaves."""
        reader = FrameReader(lambda: self._recv(sock, 65536), buffered)
        while True:
            frame = reader.next_frame()
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:  # close: answered, except by the server that never answers it
                if self.mode == NO_CLOSE_REPLY:
                    self._hold(sock)
                    return
                sock.sendall(server_frame(0x8, payload[:2]))
                return
            if opcode not in (0x1, 0x2):
                continue
            if self.mode == NO_CLOSE_REPLY:
                sock.sendall(server_frame(opcode, payload))
            elif self.mode == HUGE_FRAME:
                sock.sendall(struct.pack("!BBQ", 0x80 | opcode, 127, HUGE_FRAME_BYTES))
                self._trickle(sock, HUGE_FRAME_BYTES)
            elif self.mode == SLOW_FRAME:
                header = struct.pack("!BBH", 0x80 | opcode, 126, TRICKLE_FRAME_BYTES)
                self._trickle(sock, TRICKLE_FRAME_BYTES, header)

    def _trickle(self, sock: socket.socket, count: int, header: bytes = b"") -> None:
        """Send `header`, then `count` payload bytes one per TRICKLE_INTERVAL_S; a send fails once the client left."""
        if header:
            sock.sendall(header)
        for _ in range(count):
            sock.sendall(b"x")
            self._sleep(TRICKLE_INTERVAL_S)

    def _hold(self, sock: socket.socket) -> None:
        """Keep the connection open, reading and ignoring, until the client leaves or the server stops."""
        while self._recv(sock, 65536, deadline_s=float("inf")):
            pass


def _accept_for(head: bytes) -> str:
    key = ""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    return accept_for_key(key)


def _switching(accept: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def _http(status: int, reason: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# --- as a process of its own ------------------------------------------------------------

READY_PREFIX = "hostile ready"


class HostileProcess:
    """A `HostileServer` in a process of its own (so the pack's monitor has a server process to watch)."""

    def __init__(self, mode: str, timeout_s: float = 20.0) -> None:
        import select
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        self.mode = mode  # how the server misbehaves
        self.process = subprocess.Popen(  # python -m tests.servers.hostile_servers MODE
            [sys.executable, "-m", "tests.servers.hostile_servers", mode],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"hostile server {mode} did not start: {line!r}")
        self.port: int = int(line.split("port=")[1].split()[0])  # its listening port
        self.pid: int = self.process.pid  # the process the monitor should find on the port

    @property
    def url(self) -> str:
        """The ws:// URL of the server."""
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> None:
        """Stop the process (closing its stdin ends it; SIGKILL if it lingers)."""
        import subprocess

        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> HostileProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    """Serve `argv[0]`'s mode until stdin closes (the owner's end of the pipe)."""
    import sys

    server = HostileServer(argv[0])
    server.start()
    print(f"{READY_PREFIX} port={server.port}", flush=True)
    sys.stdin.read()  # returns at EOF: the owner stopped us, or died
    server.stop()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
