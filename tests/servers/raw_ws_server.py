"""A WebSocket echo server written by hand on plain TCP sockets, that records how each connection ended.

For tests of the disconnect styles: unlike a library server it tells a close frame from a
FIN (EOF without a close frame) from a reset (ConnectionResetError), and notices a client
that sent the upgrade request and vanished before reading the 101. One thread per
connection, on 127.0.0.1 port 0; every blocking call has a timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.servers.common import accepted_until
from tests.support.ws_frames import FrameReader, accept_for_key
from tests.support.ws_frames import frame as server_frame

IO_TIMEOUT_S = 10.0  # bound on every server-side read; a test never waits this long

# How a connection ended, from the server's side.
CLOSE_FRAME = "close-frame"  # the client sent a close frame
FIN = "fin"  # EOF without a close frame
RESET = "reset"  # ConnectionResetError
VANISHED_BEFORE_101 = "vanished-before-101"  # upgrade request received, client gone before the answer
NO_REQUEST = "no-request"  # the client left before sending a whole request


@dataclass
class ServedConnection:
    """What the server saw of one TCP connection."""

    accepted_at: float  # time.time() of the accept
    request_at: float | None = None  # time.time() when the whole upgrade request was read
    request_line: str = ""  # e.g. "GET /ws?token=x HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)  # request headers, names lower-cased
    answered: bool = False  # the 101 was sent
    messages: list[str] = field(default_factory=list)  # text messages received (and echoed)
    ending: str | None = None  # CLOSE_FRAME, FIN, RESET, VANISHED_BEFORE_101 or NO_REQUEST; None while open
    ended_at: float | None = None  # time.time() when the ending was seen

    @property
    def query(self) -> dict[str, list[str]]:
        """The request's query parameters."""
        target = self.request_line.split(" ")[1] if " " in self.request_line else ""
        return parse_qs(urlsplit(target).query)


class RawWsServer:
    """Echo server on 127.0.0.1:0; `connections` lists every connection in accept order."""

    def __init__(self, answer_delay_s: float = 0.02, answer_close: bool = True) -> None:
        self.answer_delay_s = answer_delay_s  # wait before the 101, to see whether the client is still there
        self.answer_close = answer_close  # False: a close frame gets no answer and the socket stays open
        self.connections: list[ServedConnection] = []  # every connection, in accept order
        self._lock = threading.Lock()  # guards `connections`
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)  # the listening socket
        self._listener.settimeout(0.1)  # so the accept loop sees `stop`
        self.port: int = self._listener.getsockname()[1]  # the bound port
        self._stopping = threading.Event()  # set by stop()
        self._threads: list[threading.Thread] = []  # the accept thread and connection threads
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)  # accepts connections

    @property
    def url(self) -> str:
        """The ws:// URL of the server."""
        return f"ws://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> RawWsServer:
        self._accepter.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting and wait (bounded) for the connection threads."""
        self._stopping.set()
        self._accepter.join(timeout=2)
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=2)

    def snapshot(self) -> list[ServedConnection]:
        """A copy of the list of connections so far."""
        with self._lock:
            return list(self.connections)

    def wait_for_endings(self, count: int, deadline_s: float = 5.0) -> list[ServedConnection]:
        """Wait until at least `count` connections have ended; fail after the deadline."""
        end = time.monotonic() + deadline_s
        while True:
            connections = self.snapshot()
            if sum(c.ending is not None for c in connections) >= count:
                return connections
            if time.monotonic() > end:
                raise AssertionError(f"{count} connection endings not seen within {deadline_s} s: {connections}")
            time.sleep(0.01)

    # --- the server threads ----------------------------------------------------------

    def _accept_loop(self) -> None:
        for sock in accepted_until(self._listener, self._stopping):
            record = ServedConnection(accepted_at=time.time())
            with self._lock:
                self.connections.append(record)
            thread = threading.Thread(target=self._serve, args=(sock, record), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _end(self, record: ServedConnection, ending: str) -> None:
        record.ended_at = time.time()
        record.ending = ending

    def _serve(self, sock: socket.socket, record: ServedConnection) -> None:
        sock.settimeout(IO_TIMEOUT_S)
        try:
            with sock:
                self._converse(sock, record)
        except ConnectionResetError:
            self._end(record, RESET)
        except (TimeoutError, OSError):
            if record.ending is None:
                self._end(record, "error")

    def _converse(self, sock: socket.socket, record: ServedConnection) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(4096)
            if not chunk:
                self._end(record, NO_REQUEST)
                return
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        record.request_at = time.time()
        lines = head.decode("latin-1").split("\r\n")
        record.request_line = lines[0]
        record.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if not rest and self._client_vanished(sock):
            self._end(record, VANISHED_BEFORE_101)
            return
        accept = accept_for_key(record.headers.get("sec-websocket-key", ""))
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        record.answered = True
        reader = FrameReader(lambda: sock.recv(4096), rest)
        while True:
            frame = reader.next_frame()
            if frame is None:
                self._end(record, FIN)
                return
            opcode, payload = frame
            if opcode == 0x8:
                self._end(record, CLOSE_FRAME)
                if self.answer_close:
                    sock.sendall(server_frame(0x8, payload[:2]))
                else:  # a server that hangs in the closing handshake: hold on until the client leaves
                    while not self._stopping.is_set() and reader.next_frame() is not None:
                        pass
                return
            if opcode == 0x9:
                sock.sendall(server_frame(0xA, payload))
            elif opcode in (0x1, 0x2):
                record.messages.append(payload.decode("utf-8", "replace"))
                sock.sendall(server_frame(opcode, payload))

    def _client_vanished(self, sock: socket.socket) -> bool:
        """Peek for an EOF or a reset within `answer_delay_s`; data or silence means the client is there."""
        sock.settimeout(self.answer_delay_s)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        finally:
            sock.settimeout(IO_TIMEOUT_S)
