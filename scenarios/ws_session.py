"""One WebSocket connection on `websocket-client`: connect, send, receive, and each way to end it.

A thin I/O adapter. Every socket operation is bounded by `timeout_s` (every read by a
`Deadline`). The connect (TCP and the HTTP upgrade) is `scenarios.handshake`'s, which
hands the upgraded socket to a `websocket-client` object; the server's frames are read with
`scenarios.server_frames`, the client's own are `scenarios.client_frames`'. The ways to end a
connection are the disconnect styles of `scenarios.disconnect`: a clean close, a FIN
without a close frame, a reset, and (on a raw socket, no `websocket-client`) a handshake
dropped before its answer. The clean close is written here rather than using
`WebSocket.close()`, whose bare `except:` swallows `GreenletExit` and so lets a killed
Locust user run on.
"""

from __future__ import annotations

import errno
import socket
import ssl
import struct
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import gevent
import websocket
from gevent.socket import wait_read

from scenarios import handshake
from scenarios.client_frames import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PONG,
    OPCODE_TEXT,
    close_payload,
    masked_frame,
)
from scenarios.failure import WsFailure
from scenarios.handshake import AdoptedWebSocket
from scenarios.server_frames import OPCODE_PING, FrameError, ServerFrames
from scenarios.upgrade import HandshakeError, new_websocket_key, target

CLOSE_NORMAL = close_payload(websocket.STATUS_NORMAL)  # a clean close's payload: code 1000, no reason
READ_CHUNK_BYTES = 16384  # the most one read of the server's frames takes from the socket


# OpenSSL's certificate verification results (X509_V_ERR_*), as the one line a user reads.
TLS_VERIFY_FAILURES = {
    2: "TLS: certificate not trusted",  # unable to get issuer certificate
    9: "TLS: certificate not yet valid",
    10: "TLS: certificate expired",
    18: "TLS: certificate not trusted",  # self-signed certificate
    19: "TLS: certificate not trusted",  # self-signed certificate in chain
    20: "TLS: certificate not trusted",  # unable to get local issuer certificate
    21: "TLS: certificate not trusted",  # unable to verify the first certificate
    62: "TLS: host name mismatch",
    64: "TLS: IP address mismatch",
}
TLS_REASONS = {  # OpenSSL's reason codes of other handshake failures
    "WRONG_VERSION_NUMBER": "server does not speak TLS",
    "UNSUPPORTED_PROTOCOL": "protocol version not supported",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol version not supported",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake failed",
    "TLSV1_ALERT_UNKNOWN_CA": "server refused the client certificate",
}


def describe_failure(error: BaseException, action: str) -> WsFailure:
    """Map any exception from a WebSocket action to a stable, secret-free failure."""
    if isinstance(error, WsFailure):
        return error
    if isinstance(error, websocket.WebSocketBadStatusException):
        return WsFailure(f"handshake rejected: HTTP {error.status_code}")
    if isinstance(error, (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError)):
        return WsFailure(f"{action} timed out")
    if isinstance(error, ConnectionRefusedError):
        return WsFailure("connection refused")
    if isinstance(error, ConnectionResetError):
        return WsFailure(f"connection reset during {action}")
    if isinstance(error, (BrokenPipeError, websocket.WebSocketConnectionClosedException)):
        return WsFailure(f"connection closed by server during {action}")
    if isinstance(error, OSError) and error.errno == errno.ENOTCONN:
        return WsFailure(f"connection closed by server during {action}")
    if isinstance(error, (socket.gaierror, websocket.WebSocketAddressException)):
        return WsFailure("host name not resolvable")
    if isinstance(error, ssl.SSLCertVerificationError):
        return WsFailure(TLS_VERIFY_FAILURES.get(error.verify_code, "TLS: certificate not verified"))
    if isinstance(error, ssl.SSLError):
        reason = TLS_REASONS.get(getattr(error, "reason", None) or "")
        return WsFailure(f"TLS: {reason}" if reason else f"TLS error during {action}")
    if isinstance(error, OSError) and error.errno == errno.EADDRNOTAVAIL:
        return WsFailure("no free local port (load generator limit)", generator_limit=True)
    if isinstance(error, OSError) and error.errno == errno.EMFILE:
        return WsFailure("too many open files (load generator limit)", generator_limit=True)
    if isinstance(error, websocket.WebSocketProtocolException):
        return WsFailure(f"protocol error during {action}")
    if isinstance(error, websocket.WebSocketException):
        return WsFailure(f"WebSocket error during {action}")
    return WsFailure(f"{type(error).__name__} during {action}")


def url_with_token(url: str, token: str) -> str:
    """The URL with `token=` added to its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def upgrade_request(url: str, headers: list[str], key: str) -> bytes:
    """The HTTP request of a WebSocket handshake for `url`, as `websocket-client` sends it (no Origin).

    `headers` are extra header lines (the auth header); `key` is the Sec-WebSocket-Key.
    """
    return target(url, tuple(headers)).request(key)


class WebSocketSession:
    """One connection's life; the caller times each call and fires Locust events."""

    # Slotted: one session per open connection, and a per-instance dict is memory per connection.
    __slots__ = ("_url", "_headers", "timeout_s", "source_address", "subprotocols", "ca_file", "_ws", "_timer")

    def __init__(
        self,
        url: str,
        timeout_s: float,
        auth_token: str = "",
        auth_in: str = "header",
        source_address: str | None = None,
        subprotocols: tuple[str, ...] = (),
        headers: tuple[str, ...] = (),
        ca_file: str = "",
    ) -> None:
        self._url = (
            url_with_token(url, auth_token) if auth_token and auth_in == "query" else url
        )  # may hold the token: never shown
        auth = (f"Authorization: Bearer {auth_token}",) if auth_token and auth_in == "header" else ()
        self._headers = auth + headers  # header lines; the values may be secrets: never shown
        self.timeout_s = timeout_s  # bound on every socket operation
        self.source_address = source_address  # the local address to connect from; None: the kernel's choice
        self.subprotocols = subprotocols  # offered in the handshake; the server must pick one of them
        self.ca_file = ca_file  # wss://: a CA bundle to trust besides the system's; "" for none
        self._ws: AdoptedWebSocket | None = None  # the open connection, if any
        self._timer: gevent.Timeout | None = None  # the deadlines' timer at `timeout_s`, made at the first wait

    @property
    def is_open(self) -> bool:
        """True between a successful connect and a close or abort."""
        return self._ws is not None

    def connect(self) -> None:
        """Open the connection: TCP connect and WebSocket handshake, within the timeout."""
        try:
            self._ws = handshake.open_websocket(
                self._url, self._headers, self.timeout_s, self.subprotocols, self.source_address, self.ca_file
            )
        except HandshakeError as error:
            raise WsFailure(error.message) from None
        except Exception as error:
            raise describe_failure(error, "connect") from None

    def send_text(self, text: str, action: str) -> None:
        """Send one text frame (bounded by the socket's timeout)."""
        ws = self._require_open(action)
        try:
            ws.write(masked_frame(OPCODE_TEXT, text.encode()))
        except Exception as error:
            raise describe_failure(error, action) from None

    def send_frame(self, frame: str | bytes, action: str) -> None:
        """Send one frame: a `str` as a text frame, `bytes` as a binary frame."""
        ws = self._require_open(action)
        try:
            if isinstance(frame, str):
                ws.write(masked_frame(OPCODE_TEXT, frame.encode()))
            else:
                ws.write(masked_frame(OPCODE_BINARY, frame))
        except Exception as error:
            raise describe_failure(error, action) from None

    def receive(self, action: str) -> tuple[int, bytes]:
        """The next whole message (opcode, payload), or a ping (already answered) or pong; a close frame too.

        The caller bounds the whole wait (`Deadline`); no message may exceed the reader's limit.
        After a close frame or a failure the connection is dropped.
        """
        ws = self._require_open(action)
        try:
            message = _recv_message(ws, action, control=True)
        except BaseException as error:
            if not isinstance(error, gevent.Timeout):
                self.abort()
            if isinstance(error, Exception):
                raise describe_failure(error, action) from None
            raise
        if message[0] == OPCODE_CLOSE:
            self.abort()
        return message

    def deadline(self, timeout_s: float, message: str | Callable[[], str]) -> Deadline:
        """A Deadline for one wait on this connection (see `Deadline`).

        The connection's waits at its own timeout share one timer, started and stopped per
        wait: a flapping cycle waits several times, and a timer costs more to make than to
        restart. Another timeout, or a wait inside a wait, gets a timer of its own.
        """
        timer = self._timer
        if timeout_s != self.timeout_s or (timer is not None and timer.pending):
            return Deadline(timeout_s, message)
        if timer is None:
            timer = self._timer = gevent.Timeout(timeout_s)
        return Deadline(timeout_s, message, timer)

    def readable(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for bytes to read (a message may be starting); False when none came."""
        ws = self._require_open("hold")
        sock = ws.sock
        assert sock is not None  # an open session has its socket
        if ws.frames.buffered or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            return True
        try:
            wait_read(sock.fileno(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    def close_clean(self, goodbye: tuple[str | bytes, ...] = ()) -> None:
        """Send a close frame, wait (bounded as a whole) for the server's close frame, then drop TCP.

        `goodbye` are frames the protocol sends before its close frame (Socket.IO's namespace
        DISCONNECT, text; MQTT's DISCONNECT, binary): they go in the same write.
        """
        ws = self._require_open("close")
        self._ws = None
        try:
            with self.deadline(self.timeout_s, "close timed out"):  # also a server that streams and never closes
                frames = [
                    masked_frame(OPCODE_TEXT, frame.encode())
                    if isinstance(frame, str)
                    else masked_frame(OPCODE_BINARY, frame)
                    for frame in goodbye
                ]
                frames.append(masked_frame(OPCODE_CLOSE, CLOSE_NORMAL))
                ws.write(b"".join(frames))
                while True:
                    opcode, _data = _recv_message(ws, "close")
                    if opcode == OPCODE_CLOSE:
                        break
        except websocket.WebSocketConnectionClosedException:
            pass  # the server closed TCP right after its close frame: a clean end
        except Exception as error:
            raise describe_failure(error, "close") from None
        finally:
            _drop(ws)

    def close_abrupt(self) -> None:
        """End with a TCP FIN and no close frame: shut down the sending side, then drop the socket."""
        ws = self._require_open("abrupt")
        self._ws = None
        try:
            if ws.sock is not None:
                ws.sock.shutdown(socket.SHUT_WR)
        except Exception as error:
            raise describe_failure(error, "abrupt") from None
        finally:
            _drop(ws)

    def close_reset(self) -> None:
        """End with a TCP RST and no close frame (SO_LINGER 0, then close); never blocks."""
        ws = self._require_open("reset")
        self._ws = None
        _drop(ws, reset=True)

    def abort(self, reset: bool = False) -> None:
        """Drop the connection now, without a close frame (a RST with `reset`); never blocks, never raises."""
        ws, self._ws = self._ws, None
        if ws is not None:
            _drop(ws, reset=reset)

    def abort_handshake(self) -> None:
        """Open a new TCP connection, send the upgrade request, and drop it before reading the answer.

        A plain socket (gevent's under Locust), bounded by the timeout like every other
        operation; TLS for wss:// URLs. The socket is closed on every path, a kill included.
        """
        sock: socket.socket | None = None
        try:
            where = target(self._url, self._headers)
            sock = handshake.open_tcp(where.host, where.port, self.timeout_s, self.source_address)
            if where.secure:
                sock = handshake.tls_context(self.ca_file).wrap_socket(sock, server_hostname=where.host)
            handshake.send_all(sock, where.request(new_websocket_key()))
        except HandshakeError as error:
            raise WsFailure(error.message) from None
        except Exception as error:
            raise describe_failure(error, "connect") from None
        finally:
            if sock is not None:
                _close_quietly(sock)

    def _require_open(self, action: str) -> AdoptedWebSocket:
        if self._ws is None:
            raise WsFailure(f"{action} without an open connection")
        return self._ws


class Deadline:
    """Bound a whole operation, not only each read: `with Deadline(...)` raises WsFailure(message) when the time is up.

    `message` may be a function, asked only when the time is up (an expect says what came).
    `timer` is a gevent timeout at `timeout_s` to reuse (stopped, not closed, at the end), not
    running now; without one the Deadline makes its own.

    A gevent timeout (Locust runs on gevent): it fires in whichever read the operation waits.
    The session's reads of frames wait without the socket's own timeout (`_recv_message`):
    every one runs under a Deadline.
    """

    __slots__ = ("_timer", "_message", "_reused")

    def __init__(self, timeout_s: float, message: str | Callable[[], str], timer: gevent.Timeout | None = None) -> None:
        self._reused = timer is not None  # stopped for the next wait at the end, rather than closed
        # Raised in the waiting greenlet when the time is up.
        self._timer = timer if timer is not None else gevent.Timeout(timeout_s)
        self._message = message  # the failure's text, or a function that makes it

    def __enter__(self) -> None:
        self._timer.start()

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        timer = self._timer
        if self._reused:
            timer.cancel()
        else:
            timer.close()
        if error is timer:
            message = self._message
            raise WsFailure(message if isinstance(message, str) else message()) from None


def _recv_message(ws: AdoptedWebSocket, action: str, control: bool = False) -> tuple[int, bytes]:
    """The next whole message (opcode, payload), answering pings; a close frame is returned as one.

    The frames are `scenarios.server_frames`' (RFC 6455 section 5): a message already read
    costs no system call. Every caller holds a `Deadline`, which bounds the whole message:
    while the socket is read, its own timeout is lifted (a timer less per wait) and
    restored however the read ends.

    With `control`, a ping (answered) or pong between messages is returned too, so a caller
    waiting for a deadline is not held by a stream of pings.

    A frame, or a fragmented message, over the reader's limit (`server_frames.MAX_MESSAGE_BYTES`) is
    refused from its header, unread (`frame too large during <action>`); a frame the client
    must refuse is a `protocol error during <action>`.
    """
    frames = ws.frames
    while True:
        try:
            message = frames.next()
            if message is None:
                message = _read_frames(ws, frames)
        except FrameError as error:
            raise WsFailure(f"{error} during {action}") from None
        opcode = message[0]
        if opcode == OPCODE_PING:
            ws.write(masked_frame(OPCODE_PONG, message[1]))
            if control:
                return OPCODE_PING, b""
        elif opcode == OPCODE_PONG:
            if control:
                return OPCODE_PONG, b""
        else:
            return message


def _read_frames(ws: AdoptedWebSocket, frames: ServerFrames) -> tuple[int, bytes]:
    """Read the socket, without its own timeout, until `frames` has a message or control frame."""
    sock = ws.sock
    if sock is None:
        raise websocket.WebSocketConnectionClosedException("socket is already closed.")
    timeout = sock.gettimeout()
    sock.settimeout(None)
    try:
        while True:
            data = sock.recv(READ_CHUNK_BYTES)
            if not data:
                raise websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")
            frames.feed(data)
            message = frames.next()
            if message is not None:
                return message
    finally:
        sock.settimeout(timeout)


def _drop(ws: AdoptedWebSocket, reset: bool = False) -> None:
    """Close the socket immediately (with a RST when `reset`); errors (already closed) are irrelevant here."""
    sock = ws.sock
    ws.sock = None
    ws.connected = False
    if sock is not None:
        _close_quietly(sock, reset=reset)


def _close_quietly(sock: socket.socket, reset: bool = False) -> None:
    if reset:
        try:
            # Linger on, timeout 0: close() discards unsent data and sends a RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    try:
        sock.close()
    except OSError:
        pass
