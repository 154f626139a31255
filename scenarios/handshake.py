"""The connect path of a WebSocket session: TCP connect and HTTP upgrade, then a `websocket-client` object holds it.

`websocket-client`'s own `connect()` resolves the host on every call (gevent's thread-pool
resolver under Locust) and reads the upgrade response one byte per `recv()`, about 130
system calls per handshake: most of a flapping cycle's CPU. Here a numeric host is never
resolved and a name is resolved once per `RESOLVE_TTL_S`; the response is read in buffered
`recv()` calls until its blank line (bounded in size and time); the status, the Upgrade and
Connection headers, `Sec-WebSocket-Accept` and the subprotocol are checked as the library
checks them, by the pure `scenarios.upgrade`. The upgraded socket is then handed to a
`websocket.WebSocket`; the pack writes its frames (`scenarios.client_frames`) and reads the
server's (`scenarios.server_frames`) itself, the bytes that came with the response first.

That hand-over sets attributes of the library's object that are not public API (`sock`,
`connected`, `handshake_response`, the locks, the continuation state): all of it is in
`adopt()`, and `tests/scenarios/test_handshake.py` fails when the library changes under it.

Socket calls use the `socket` module as patched (gevent's under Locust), so every wait
yields to the event loop; every operation is bounded by the timeout (the session's reads of
frames by a `ws_session.Deadline` instead, see `ws_session._recv_message`).
"""

from __future__ import annotations

import _socket  # the C socket type, which gevent's monkey-patching never replaces
import errno
import os
import selectors
import socket
import ssl
import time
from functools import cached_property, lru_cache

import websocket
from websocket._abnf import continuous_frame
from websocket._abnf import frame_buffer as LibraryFrameBuffer
from websocket._handshake import handshake_response
from websocket._socket import sock_opt
from websocket._utils import NoLock

from scenarios.server_frames import ServerFrames
from scenarios.settings import MAX_SOURCE_ADDRESSES
from scenarios.upgrade import (
    MAX_REDIRECTS,
    HandshakeError,
    check_upgrade,
    new_websocket_key,
    parse_response_head,
    redirect_url,
    split_response_head,
    target,
)

# The websocket-client versions whose internals `adopt()` was checked against; the test
# of those internals fails on any other version until it is checked and added here.
VERIFIED_WEBSOCKET_CLIENT = ("1.9.2",)
RECV_CHUNK_BYTES = 4096  # one read of the upgrade response; a 101 is usually ~130 bytes
RESOLVE_TTL_S = 30.0  # how long a host name's addresses are reused
# Linux: bind() picks no port, connect() picks one for the whole 4-tuple, so one source
# address is not limited to one ephemeral port range shared by every destination.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


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
            # Family, type and protocol given: the socket module asks the kernel for none of them.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=raw.detach())
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
        split = split_response_head(buffer)
        if split is not None:
            return split
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("upgrade response not complete in time")
        sock.settimeout(remaining)
        chunk = sock.recv(RECV_CHUNK_BYTES)
        if not chunk:
            raise HandshakeError("connection closed by server during connect")
        buffer += chunk


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
            send_all(sock, where.request(key))
            head, rest = read_response_head(sock, timeout_s)
            status, response_headers = parse_response_head(head)
            redirected = redirect_url(url, status, response_headers)
            if redirected is not None:
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
# The continuation state of the library's `recv()`/`recv_data()`, shared: the pack reads
# frames with its own reader (`ws_session._recv_message`), which never touches it.
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


# What `websocket.WebSocket.__init__` sets, each of which `AdoptedWebSocket.__init__` sets instead
# (`tests/scenarios/test_handshake.py` fails when the library's list changes).
LIBRARY_ATTRIBUTES = frozenset(
    ("sock_opt", "handshake_response", "sock", "connected", "close_frame", "get_mask_key")
    + ("frame_buffer", "cont_frame", "dispatcher", "lock", "readlock")
)


class AdoptedWebSocket(websocket.WebSocket):
    """A `websocket.WebSocket` made from an upgraded socket (`adopt`), sharing what the library makes per connection.

    The pack writes its frames itself (`write`, frames from `scenarios.client_frames`) and
    reads the server's with `frames` (`scenarios.server_frames`, fed by `ws_session`), not
    through the library's send and receive paths. So the library's per-connection objects
    are shared or late: one no-op lock, one continuation state, socket options per timeout
    (`settimeout()` gives a connection its own first), and the library's frame buffer only
    when its own `recv()` is called.
    """

    def __init__(self, sock: socket.socket, options: sock_opt, response: handshake_response) -> None:
        # Not the library's __init__: it makes a frame buffer (with a lock), a continuation
        # state, options and locks per connection, which cost time per cycle and memory per
        # held connection. The same attributes (LIBRARY_ATTRIBUTES), set to shared objects.
        self.sock_opt = options
        self.handshake_response = response
        self.sock = sock
        self.connected = True
        self.close_frame = None
        self.get_mask_key = None
        self.cont_frame = _SHARED_CONT_FRAME
        self.dispatcher = None
        self.lock = self.readlock = _NO_LOCK  # type: ignore[assignment]  # a lock's interface
        self.frames = ServerFrames()  # the server's frames read so far

    @cached_property
    def frame_buffer(self) -> LibraryFrameBuffer:  # type: ignore[override]
        """The library's frame reader, made when its own `recv()` first asks (the pack never does)."""
        buffer = LibraryFrameBuffer(self._recv, True)
        buffer.lock = _NO_LOCK  # type: ignore[assignment]
        return buffer

    def settimeout(self, timeout: float | None) -> None:
        if isinstance(self.sock_opt, _SharedOptions):
            self.sock_opt = sock_opt(None, None)  # copy on write: never change another connection's timeout
        super().settimeout(timeout)

    def write(self, data: bytes) -> None:
        """Send frames (`scenarios.client_frames`), bounded by the socket's timeout (see `send_all`)."""
        sock = self.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        send_all(sock, data)


def send_all(sock: socket.socket, data: bytes) -> None:
    """Send all of `data`, each call bounded by the socket's timeout.

    One `send` takes an upgrade request or a few frames whole; `sendall` (which asks the
    kernel for the send buffer's size first) sends what is left of a larger write, so a
    write may take up to twice the timeout.
    """
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
    they go to the connection's frame reader (`frames`) first. The response headers are not
    kept (see `_response`); what the library makes per connection is shared or late (see
    `AdoptedWebSocket`): each would cost time per cycle and memory per open connection, and
    none is needed here. Not public API of the library: pinned by `tests/scenarios/test_handshake.py`.
    """
    sock.settimeout(timeout_s)  # what `ws.settimeout()` does besides writing the options
    ws = AdoptedWebSocket(sock, _shared_options(timeout_s), _response(status, subprotocol))
    if buffered:
        ws.frames.feed(buffered)
    return ws
