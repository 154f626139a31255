"""One WebSocket connection on `websocket-client`: connect, echo, and each way to end it.

A thin I/O adapter. Every socket operation is bounded by `timeout_s`. The ways to end a
connection are the disconnect styles of `scenarios.disconnect`: a clean close, a FIN
without a close frame, a reset, and (on a raw socket, no `websocket-client`) a handshake
dropped before its answer. The clean close is written here rather than using
`WebSocket.close()`, whose bare `except:` swallows `GreenletExit` and so lets a killed
Locust user run on.
"""

from __future__ import annotations

import base64
import errno
import os
import socket
import ssl
import struct
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websocket
from websocket import ABNF


class WsFailure(Exception):
    """A failed WebSocket action, with a short stable message (no ports, ids or tokens).

    Locust groups failures by `repr`, so `repr` is the message alone.
    """

    def __init__(self, message: str, generator_limit: bool = False) -> None:
        super().__init__(message)
        self.message = message  # what the stats table shows
        self.generator_limit = generator_limit  # the load generator, not the server, hit a limit

    def __repr__(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message


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
    if isinstance(error, ssl.SSLError):
        return WsFailure(f"TLS error during {action}")
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
    """The HTTP request of a WebSocket handshake for `url`, as `websocket-client` sends it.

    `headers` are extra header lines (the auth header); `key` is the Sec-WebSocket-Key.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "wss" else 80
    host_port = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {resource} HTTP/1.1",
        "Upgrade: websocket",
        f"Host: {host_port}",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Connection: Upgrade",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def new_websocket_key() -> str:
    """A fresh random Sec-WebSocket-Key (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


class WebSocketSession:
    """One connection's life; the caller times each call and fires Locust events."""

    def __init__(self, url: str, timeout_s: float, auth_token: str = "", auth_in: str = "header") -> None:
        self._url = (
            url_with_token(url, auth_token) if auth_token and auth_in == "query" else url
        )  # may hold the token: never shown
        self._headers = [f"Authorization: Bearer {auth_token}"] if auth_token and auth_in == "header" else []  # ditto
        self.timeout_s = timeout_s  # bound on every socket operation
        self._ws: websocket.WebSocket | None = None  # the open connection, if any

    @property
    def is_open(self) -> bool:
        """True between a successful connect and a close or abort."""
        return self._ws is not None

    def connect(self) -> None:
        """Open the connection: TCP connect and WebSocket handshake, within the timeout."""
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(self._url, header=self._headers, timeout=self.timeout_s, suppress_origin=True)
        except BaseException as error:
            ws.shutdown()
            if isinstance(error, Exception):
                raise describe_failure(error, "connect") from None
            raise
        self._ws = ws

    def echo(self, message: str) -> int:
        """Send a text message and wait for the same text back; returns its length."""
        ws = self._require_open("echo")
        try:
            ws.send(message)
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                opcode, data = ws.recv_data(control_frame=False)
                if opcode == ABNF.OPCODE_TEXT:
                    break
                if opcode == ABNF.OPCODE_CLOSE:
                    raise WsFailure("connection closed by server during echo")
            else:
                raise WsFailure("echo timed out")
        except WsFailure:
            raise
        except Exception as error:
            raise describe_failure(error, "echo") from None
        if data.decode("utf-8", "replace") != message:
            raise WsFailure("echo did not match")
        return len(data)

    def close_clean(self) -> None:
        """Send a close frame, wait (bounded) for the server's close frame, then drop TCP."""
        ws = self._require_open("close")
        self._ws = None
        try:
            ws.send_close(websocket.STATUS_NORMAL, b"")
            deadline = time.monotonic() + self.timeout_s
            while True:
                frame = ws.recv_frame()
                if frame is not None and frame.opcode == ABNF.OPCODE_CLOSE:
                    break
                if time.monotonic() > deadline:  # a server that streams and never closes
                    raise WsFailure("close timed out")
        except (websocket.WebSocketConnectionClosedException, struct.error):
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
        parts = urlsplit(self._url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((host, port), timeout=self.timeout_s)
            if parts.scheme == "wss":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            sock.sendall(upgrade_request(self._url, self._headers, new_websocket_key()))
        except Exception as error:
            raise describe_failure(error, "connect") from None
        finally:
            if sock is not None:
                _close_quietly(sock)

    def _require_open(self, action: str) -> websocket.WebSocket:
        if self._ws is None:
            raise WsFailure(f"{action} without an open connection")
        return self._ws


def _drop(ws: websocket.WebSocket, reset: bool = False) -> None:
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
