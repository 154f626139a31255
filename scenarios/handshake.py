"""The connect path of a WebSocket session: TCP connect and HTTP upgrade here, then `websocket-client` reads frames.

`websocket-client`'s own `connect()` resolves the host on every call (gevent's thread-pool
resolver under Locust) and reads the upgrade response one byte per `recv()`, about 130
system calls per handshake: most of a flapping cycle's CPU. Here a numeric host is never
resolved and a name is resolved once per `RESOLVE_TTL_S`; the response is read in buffered
`recv()` calls until its blank line (bounded in size and time); the status, the Upgrade and
Connection headers, `Sec-WebSocket-Accept` and the subprotocol are checked as the library
checks them. The upgraded socket is then handed to a `websocket.WebSocket`, whose frame
reader reads the server's frames (the pack writes its own: `scenarios.client_frames`).

That hand-over sets attributes of the library's object that are not public API (`sock`,
`connected`, `handshake_response`, the locks, the continuation state, and the frame reader's
buffer for bytes that came with the response): all of it is in `adopt()`, and
`tests/scenarios/test_handshake.py` fails when the library changes under it.

Socket calls use the `socket` module as patched (gevent's under Locust), so every wait
yields to the event loop; every operation is bounded by the timeout (the session's reads of
frames by a `ws_session.Deadline` instead, see `ws_session._recv_message`).
"""

from __future__ import annotations

import _socket  # the C socket type, which gevent's monkey-patching never replaces
import base64
import errno
import hashlib
import os
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import websocket
from websocket._abnf import continuous_frame
from websocket._handshake import handshake_response
from websocket._socket import sock_opt
from websocket._utils import NoLock

from scenarios.settings import MAX_SOURCE_ADDRESSES

# The websocket-client versions whose internals `adopt()` was checked against; the test
# of those internals fails on any other version until it is checked and added here.
VERIFIED_WEBSOCKET_CLIENT = ("1.9.2",)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_RESPONSE_HEAD_BYTES = 16384  # a longer upgrade response is refused
READ_CHUNK_BYTES = 16384  # the most one read of frames takes from the socket (as websocket-client's reads)
RECV_CHUNK_BYTES = 4096  # one read of the upgrade response; a 101 is usually ~130 bytes
RESOLVE_TTL_S = 30.0  # how long a host name's addresses are reused
MAX_REDIRECTS = 3  # as websocket-client
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))  # followed, as websocket-client does
# Linux: bind() picks no port, connect() picks one for the whole 4-tuple, so one source
# address is not limited to one ephemeral port range shared by every destination.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class HandshakeError(Exception):
    """The server's answer to the upgrade request is not a WebSocket upgrade; `message` is stable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message  # e.g. "handshake rejected: HTTP 503", no ports, ids or tokens


@dataclass(frozen=True)
class Target:
    """Where a ws:// or wss:// URL connects, and its upgrade request around the key."""

    secure: bool  # wss://
    host: str  # the host name or address, without brackets
    port: int  # the TCP port
    request_head: bytes = field(repr=False)  # the request up to the Sec-WebSocket-Key value (may hold a token)
    request_tail: bytes = field(repr=False)  # the rest of the request after the key
    subprotocols: tuple[str, ...] = ()  # offered subprotocols, lower-case; the answer must pick one

    def request(self, key: str) -> bytes:
        """The whole upgrade request with this Sec-WebSocket-Key."""
        return self.request_head + key.encode("ascii") + self.request_tail


@lru_cache(maxsize=256)
def target(url: str, headers: tuple[str, ...] = (), subprotocols: tuple[str, ...] = ()) -> Target:
    """Parse `url` once: host, port and the upgrade request as `websocket-client` writes it (no Origin).

    `headers` are extra header lines (the auth header); `subprotocols` are offered in
    `Sec-WebSocket-Protocol`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise HandshakeError("handshake failed: not a ws:// or wss:// URL")
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    default_port = 443 if secure else 80
    port = parts.port or default_port
    shown_host = f"[{host}]" if ":" in host else host
    host_port = shown_host if port == default_port else f"{shown_host}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    before = [f"GET {resource} HTTP/1.1", "Upgrade: websocket", f"Host: {host_port}", "Sec-WebSocket-Key: "]
    after = ["", "Sec-WebSocket-Version: 13", "Connection: Upgrade"]
    if subprotocols:
        after.append(f"Sec-WebSocket-Protocol: {','.join(subprotocols)}")
    after.extend(headers)
    return Target(
        secure=secure,
        host=host,
        port=port,
        request_head="\r\n".join(before).encode("latin-1"),
        request_tail=("\r\n".join(after) + "\r\n\r\n").encode("latin-1"),
        subprotocols=tuple(p.lower() for p in subprotocols),
    )


def new_websocket_key() -> str:
    """A fresh random Sec-WebSocket-Key (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def expected_accept(key: str) -> bytes:
    """The Sec-WebSocket-Accept a server must answer to `key` (RFC 6455, 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest())


# --- addresses ---------------------------------------------------------------------------

_resolved: dict[tuple[str, int], tuple[float, list[tuple[int, tuple]]]] = {}  # (host, port) -> (expiry, addresses)


def _numeric(host: str, port: int) -> list[tuple[int, tuple]] | None:
    for family, sockaddr in ((socket.AF_INET, (host, port)), (socket.AF_INET6, (host, port, 0, 0))):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, sockaddr)]
    return None


def addresses(host: str, port: int, now: float | None = None) -> list[tuple[int, tuple]]:
    """(family, sockaddr) pairs for a TCP connection to host:port, in the resolver's order.

    A numeric address never goes through the resolver; a name is resolved once and reused
    for `RESOLVE_TTL_S` (the resolver runs in a thread pool under gevent, and starves at
    hundreds of connects per second). Raises socket.gaierror for an unknown name.
    """
    now = time.monotonic() if now is None else now
    cached = _resolved.get((host, port))
    if cached is not None and cached[0] > now:
        return cached[1]
    found = _numeric(host, port)
    expiry = float("inf")
    if found is None:
        found = [(info[0], info[4]) for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)]
        expiry = now + RESOLVE_TTL_S
    _resolved[(host, port)] = (expiry, found)
    return found


def loopback_source_addresses(host: str, count: int) -> tuple[str, ...]:
    """127.0.0.1 .. 127.0.0.`count` when `host` is an IPv4 loopback address (or localhost), else ().

    Each source address has its own ephemeral ports toward the server, so a client that
    keeps TIME_WAIT entries can open `count` times as many connections per minute.
    """
    if count <= 1:
        return ()
    if host != "localhost":
        try:
            packed = socket.inet_pton(socket.AF_INET, host)
        except OSError:
            return ()
        if packed[0] != 127:
            return ()
    return tuple(f"127.0.0.{n}" for n in range(1, min(count, MAX_SOURCE_ADDRESSES) + 1))


# --- connecting --------------------------------------------------------------------------


def _connect_started(family: int, sockaddr: tuple, source_address: str | None) -> tuple[_socket.socket, int]:
    """A non-blocking C socket with its connect started, and the connect's errno (0: connected)."""
    raw = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        raw.setblocking(False)
        raw.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        if source_address is not None:
            raw.setsockopt(_socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            raw.bind((source_address, 0))
        code = raw.connect_ex(sockaddr)
        if code == errno.EINPROGRESS:
            # On loopback the kernel has usually completed the handshake by the time connect()
            # returns: asking again saves a trip through the event loop on most connects.
            code = raw.connect_ex(sockaddr)
            if code == errno.EISCONN:
                code = 0
        return raw, code
    except BaseException:
        raw.close()
        raise


def _wait_connected(sock: socket.socket, timeout_s: float) -> None:
    """Wait (through the event loop under gevent) until a started connect ends; raise its error."""
    with selectors.DefaultSelector() as selector:  # gevent's under Locust: a cooperative wait
        selector.register(sock, selectors.EVENT_WRITE)
        if not selector.select(timeout_s):
            raise TimeoutError("connect timed out")
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


def open_tcp(host: str, port: int, timeout_s: float, source_address: str | None = None) -> socket.socket:
    """A connected TCP socket (TCP_NODELAY, timeout `timeout_s`), from `source_address` if given.

    Tries each address of the host in turn, like `socket.create_connection`; with a source
    address only IPv4 ones. The socket is closed on every failure, a kill included.
    """
    candidates = addresses(host, port)
    if source_address is not None:
        candidates = [c for c in candidates if c[0] == socket.AF_INET]
    error: OSError | None = None
    for family, sockaddr in candidates:
        sock: socket.socket | None = None
        try:
            raw, code = _connect_started(family, sockaddr, source_address)
            # The socket module as patched (gevent's under Locust) takes the connection over.
            sock = socket.socket(family, socket.SOCK_STREAM, fileno=raw.detach())
            sock.settimeout(timeout_s)
            if code in (errno.EINPROGRESS, errno.EALREADY):
                _wait_connected(sock, timeout_s)
            elif code:
                raise OSError(code, os.strerror(code))
            return sock
        except OSError as failed:
            if sock is not None:
                sock.close()
            error = failed
        except BaseException:
            if sock is not None:
                sock.close()
            raise
    raise error if error is not None else socket.gaierror(socket.EAI_NONAME, "no usable address")


_tls_contexts: dict[tuple[str, str, str], ssl.SSLContext] = {}  # (CA file, CA dir, extra CA) -> client context


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """The client TLS context: the system's CAs (SSL_CERT_FILE honoured), or WEBSOCKET_CLIENT_CA_BUNDLE.

    `ca_file` (--ws-ca-file) adds a private CA, e.g. a staging server's self-signed one.
    Certificates and host names are verified, as `websocket-client` does by default. Made
    once per CA setting: loading a CA bundle takes milliseconds.
    """
    bundle = os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE", "")
    cafile = bundle if bundle and os.path.isfile(bundle) else ""
    capath = bundle if bundle and os.path.isdir(bundle) else ""
    key = (cafile, capath, ca_file)
    context = _tls_contexts.get(key)
    if context is None:
        context = ssl.create_default_context(cafile=cafile or None, capath=capath or None)
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        _tls_contexts[key] = context
    return context


def read_response_head(sock: socket.socket, timeout_s: float) -> tuple[bytes, bytes]:
    """Read the HTTP response head (up to its blank line) in buffered reads, within `timeout_s` overall.

    Returns the head without the blank line, and the bytes that came after it (the first
    frames, when the server sends at once). Raises HandshakeError for a head over
    `MAX_RESPONSE_HEAD_BYTES` or an EOF, TimeoutError when the time is up.
    """
    deadline = time.monotonic() + timeout_s
    buffer = sock.recv(RECV_CHUNK_BYTES)
    while True:
        if not buffer:
            raise HandshakeError("connection closed by server during connect")
        end = buffer.find(b"\r\n\r\n")
        if end > MAX_RESPONSE_HEAD_BYTES or (end < 0 and len(buffer) > MAX_RESPONSE_HEAD_BYTES):
            raise HandshakeError("handshake failed: response header too large")
        if end >= 0:
            return buffer[:end], buffer[end + 4 :]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("upgrade response not complete in time")
        sock.settimeout(remaining)
        chunk = sock.recv(RECV_CHUNK_BYTES)
        if not chunk:
            raise HandshakeError("connection closed by server during connect")
        buffer += chunk


def parse_response_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-case; repeated headers joined with ", ") of a response head."""
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
        raise HandshakeError("handshake failed: bad HTTP response")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise HandshakeError("handshake failed: bad HTTP response")
        key = name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(status_line[1]), headers


def _has_token(value: str | None, token: str) -> bool:
    return value is not None and token in (part.strip().lower() for part in value.split(","))


def check_upgrade(status: int, headers: dict[str, str], key: str, subprotocols: tuple[str, ...]) -> str | None:
    """Check a response to the upgrade request; returns the chosen subprotocol (None if none was offered).

    Raises HandshakeError with a stable message: `handshake rejected: HTTP <status>` for any
    status but 101, `handshake failed: ...` for a 101 that is not a valid upgrade.
    """
    if status != 101:
        raise HandshakeError(f"handshake rejected: HTTP {status}")
    if not _has_token(headers.get("upgrade"), "websocket") or not _has_token(headers.get("connection"), "upgrade"):
        raise HandshakeError("handshake failed: not a WebSocket upgrade")
    if headers.get("sec-websocket-accept", "").encode("latin-1") != expected_accept(key):
        raise HandshakeError("handshake failed: bad Sec-WebSocket-Accept")
    if not subprotocols:
        return None
    chosen = headers.get("sec-websocket-protocol", "").strip().lower()
    if chosen not in subprotocols:
        raise HandshakeError("handshake failed: subprotocol not accepted")
    return chosen


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def open_websocket(
    url: str,
    headers: tuple[str, ...],
    timeout_s: float,
    subprotocols: tuple[str, ...] = (),
    source_address: str | None = None,
    ca_file: str = "",
) -> AdoptedWebSocket:
    """Connect and upgrade; returns an open `AdoptedWebSocket` with the socket's timeout `timeout_s`.

    Follows up to `MAX_REDIRECTS` redirects on the same host (scheme, host and port), and
    refuses one to another host, so a token never leaves for somewhere else. Raises
    HandshakeError for a bad answer, OSError (socket.timeout, ssl.SSLError, ...) for the
    rest; the socket is closed on every failure, a kill included.
    """
    for _ in range(MAX_REDIRECTS + 1):
        where = target(url, headers, subprotocols)
        sock = open_tcp(where.host, where.port, timeout_s, source_address)
        try:
            if where.secure:
                sock = tls_context(ca_file).wrap_socket(sock, server_hostname=where.host)
            key = new_websocket_key()
            sock.sendall(where.request(key))
            head, rest = read_response_head(sock, timeout_s)
            status, response_headers = parse_response_head(head)
            if status in REDIRECT_STATUSES and "location" in response_headers:
                redirected = urljoin(url, response_headers["location"])
                if _origin(redirected) != _origin(url):
                    # Never carry the token (header or query) to another host, nor load it.
                    raise HandshakeError("handshake failed: redirect to another host")
                url = redirected
                sock.close()
                continue
            subprotocol = check_upgrade(status, response_headers, key, where.subprotocols)
            return adopt(sock, status, subprotocol, rest, timeout_s)
        except BaseException:
            sock.close()
            raise
    raise HandshakeError("handshake failed: too many redirects")


_NO_LOCK = NoLock()  # one user greenlet owns each connection: no send/receive locks needed
# The continuation state of `recv()`/`recv_data()`, shared: the pack reads frames with
# `recv_frame()` (`ws_session._recv_message`), which never touches it. A whole message read
# with `recv_data()` leaves it empty again; a fragmented one would not, across connections.
_SHARED_CONT_FRAME = continuous_frame(False, True)


@lru_cache(maxsize=64)
def _response(status: int, subprotocol: str | None) -> handshake_response:
    """The handshake answer `getstatus()` and `getsubprotocol()` show, shared by every connection.

    Without the response headers (checked during the handshake, not kept): they cost about
    0.6 KB per open connection, and `getheaders()` is then empty.
    """
    return handshake_response(status, {}, subprotocol)


class _SharedOptions(sock_opt):
    """Socket options shared by every connection with one timeout (`adopt` connects, so they are never read)."""


class AdoptedWebSocket(websocket.WebSocket):
    """A `websocket.WebSocket` whose options object may be shared: `settimeout()` gives it its own first.

    Its frame reader reads whatever the socket has (`read_available`): a frame that came
    whole in one system call. The pack writes its frames itself (`write`, frames from
    `scenarios.client_frames`), not through the library's send path.
    """

    def settimeout(self, timeout: float | None) -> None:
        if isinstance(self.sock_opt, _SharedOptions):
            self.sock_opt = sock_opt(None, None)  # copy on write: never change another connection's timeout
        super().settimeout(timeout)

    def read_available(self, _size: int) -> bytes:
        """The frame reader's `recv`: what the socket has, up to READ_CHUNK_BYTES, in one call.

        The reader asks for a frame's header, then its payload; a frame that came whole is
        read with one system call, the bytes not asked for kept in the reader's buffer.
        Bounded by the socket's timeout (the pack's own reads lift it under a Deadline).
        """
        sock = self.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        data = sock.recv(READ_CHUNK_BYTES)
        if not data:
            raise websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")
        return data

    def write(self, data: bytes) -> None:
        """Send frames (`scenarios.client_frames`), bounded by the socket's timeout.

        One `send` takes a few frames whole; `sendall` (which asks the kernel for the
        send buffer's size first) sends what is left of a larger write, so a write may take
        up to twice the timeout.
        """
        sock = self.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        sent = sock.send(data)
        if sent < len(data):
            sock.sendall(memoryview(data)[sent:])


@lru_cache(maxsize=64)
def _shared_options(timeout_s: float) -> _SharedOptions:
    """The socket options of every connection with this timeout."""
    options = _SharedOptions(None, None)
    options.timeout = timeout_s
    return options


def adopt(
    sock: socket.socket,
    status: int,
    subprotocol: str | None,
    buffered: bytes,
    timeout_s: float,
) -> AdoptedWebSocket:
    """Hand an upgraded socket to `websocket-client`, as its own `connect()` leaves it, leaner.

    `buffered` are bytes read past the response head (frames the server sent at once);
    they go to the frame reader first. The response headers are not kept (see `_response`);
    the locks are one shared no-op lock, the continuation state one shared object (see
    `_SHARED_CONT_FRAME`), the socket options (read by `connect()` and `gettimeout()`
    only) one object per timeout, copied on `settimeout()`: each costs memory per open
    connection and none is needed here. Not public API of the library: pinned by
    `tests/scenarios/test_handshake.py`.
    """
    ws = AdoptedWebSocket(skip_utf8_validation=True, enable_multithread=False)
    ws.lock = ws.readlock = ws.frame_buffer.lock = _NO_LOCK  # type: ignore[assignment]  # a lock's interface
    ws.cont_frame = _SHARED_CONT_FRAME
    ws.sock_opt = _shared_options(timeout_s)
    ws.sock = sock
    sock.settimeout(timeout_s)  # what `ws.settimeout()` does besides writing the options
    ws.handshake_response = _response(status, subprotocol)
    if buffered:
        ws.frame_buffer.recv_buffer.append(buffered)
    ws.frame_buffer.recv = ws.read_available
    ws.connected = True
    return ws
