"""The connect path (TCP connect, HTTP upgrade) on real servers at 127.0.0.1: checks, headers, source addresses, TLS.

Also pins what `adopt()` relies on inside `websocket-client`, so an upgrade of the library
that changes those internals fails here first.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import websocket

from scenarios import handshake, upgrade
from scenarios.flapping_user import FlapContext
from scenarios.handshake import (
    VERIFIED_WEBSOCKET_CLIENT,
    addresses,
    adopt,
    loopback_source_addresses,
    open_websocket,
)
from scenarios.settings import FlapSettings
from scenarios.upgrade import expected_accept
from scenarios.ws_session import Deadline, WebSocketSession, WsFailure, _recv_message
from tests.servers.raw_ws_server import RawWsServer
from tests.servers.ws_echo import echo
from tests.support.unavailable import unavailable
from tests.support.ws_frames import frame as _frame

MS = 0.001 * float(os.environ.get("TEST_TIME_SCALE", "1"))  # one timing unit for these tests
TOKEN = "tok-fast-SECRET"

Answer = Callable[[dict[str, str]], bytes]  # request headers (lower-case names) -> the bytes to send back


def switching(headers: dict[str, str], extra: str = "", accept: str | None = None) -> bytes:
    """A valid 101 answer to a request with these headers (`accept` overrides the computed value)."""
    value = accept if accept is not None else expected_accept(headers["sec-websocket-key"]).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {value}\r\n{extra}\r\n"
    ).encode()


class ScriptedServer:
    """Answers every upgrade request with `answer(headers)`, then echoes frames; records requests and peers."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None, trickle_s: float = 0.0) -> None:
        self.answer = answer  # what to send back to each request
        self.tls = tls  # server-side TLS context, for wss://
        self.trickle_s = trickle_s  # > 0: send the answer one byte at a time, this far apart
        self.requests: list[dict[str, str]] = []  # request headers, plus ":request-line"
        self.peers: list[str] = []  # the client address of each connection
        self._listener = socket.create_server(("127.0.0.1", 0))  # the listening socket
        self._listener.settimeout(0.1)  # so the accept loop sees `_stopping`
        self.port: int = self._listener.getsockname()[1]  # the bound port
        self._stopping = threading.Event()  # set by stop()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)  # accepts connections

    @property
    def url(self) -> str:
        """The ws:// (or wss://) URL of the server."""
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.peers.append(peer[0])
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                buffer += chunk
            head = buffer.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            headers[":request-line"] = head[0]
            self.requests.append(headers)
            reply = self.answer(headers)
            if self.trickle_s:
                for byte in reply:
                    sock.sendall(bytes((byte,)))
                    time.sleep(self.trickle_s)
                return
            sock.sendall(reply)
            while True:  # echo unmasked copies of the client's frames (text only; enough here)
                data = sock.recv(4096)
                if not data or data[0] & 0x0F == 0x8:
                    return
                length, mask = data[1] & 0x7F, data[2:6]
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[6 : 6 + length]))
                sock.sendall(_frame(0x1, payload))
        except OSError:
            pass
        finally:
            sock.close()


def _failure(url: str, timeout_s: float = 2.0, **kwargs: object) -> str:
    session = WebSocketSession(url, timeout_s=timeout_s, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(WsFailure) as raised:
        session.connect()
    assert not session.is_open
    return raised.value.message


# --- what the server answers -------------------------------------------------------------


def test_a_wrong_sec_websocket_accept_fails_the_handshake() -> None:
    """A 101 whose Sec-WebSocket-Accept does not match the key is refused, with a stable message."""
    wrong = base64.b64encode(b"x" * 20).decode()
    with ScriptedServer(lambda h: switching(h, accept=wrong)) as server:
        assert _failure(server.url) == "handshake failed: bad Sec-WebSocket-Accept"


@pytest.mark.parametrize("status", [503, 200, 404])
def test_any_status_but_101_rejects_the_handshake(status: int) -> None:
    """HTTP 503, or a 200 page instead of the upgrade, is `handshake rejected: HTTP <status>`."""
    reply = f"HTTP/1.1 {status} Nope\r\nContent-Length: 2\r\n\r\nno".encode()
    with ScriptedServer(lambda _h: reply) as server:
        assert _failure(server.url) == f"handshake rejected: HTTP {status}"


def test_a_101_without_the_upgrade_headers_is_not_an_upgrade() -> None:
    """A 101 lacking `Upgrade: websocket` fails even with a good Accept value."""

    def answer(headers: dict[str, str]) -> bytes:
        return switching(headers).replace(b"Upgrade: websocket\r\n", b"")

    with ScriptedServer(answer) as server:
        assert _failure(server.url) == "handshake failed: not a WebSocket upgrade"


def test_an_endless_response_head_is_cut_off() -> None:
    """A response head over the size bound fails instead of being read forever."""
    reply = b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Pad: " + b"p" * 20_000 + b"\r\n\r\n"
    with ScriptedServer(lambda _h: reply) as server:
        assert _failure(server.url) == "handshake failed: response header too large"


def test_a_trickled_response_times_out_as_a_whole() -> None:
    """A server that sends its 101 a byte at a time cannot stretch the handshake past the timeout."""
    # 0 ms: request sent; every 30 ms one byte of the answer; 300 ms: the client gives up.
    with ScriptedServer(switching, trickle_s=30 * MS) as server:
        started = time.monotonic()
        assert _failure(server.url, timeout_s=300 * MS) == "connect timed out"
        assert time.monotonic() - started >= 300 * MS


def test_a_connect_nobody_answers_times_out() -> None:
    """A listener whose queue is full drops the SYN: the connect waits, bounded by the timeout."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # fills the queue of one
    try:
        started = time.monotonic()
        assert _failure(f"ws://127.0.0.1:{port}/", timeout_s=300 * MS) == "connect timed out"
        assert time.monotonic() - started >= 300 * MS
    finally:
        filler.close()
        listener.close()


def test_a_garbled_status_line_is_a_bad_http_response() -> None:
    """Something that is not HTTP gets a stable message."""
    with ScriptedServer(lambda _h: b"SSH-2.0-OpenSSH\r\n\r\n") as server:
        assert _failure(server.url) == "handshake failed: bad HTTP response"


def test_failed_handshakes_leave_no_socket_open() -> None:
    """Every failing connect closes its socket."""
    reply = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    with ScriptedServer(lambda _h: reply) as server:
        _failure(server.url)  # warm-up: lazily opened files and sockets
        before = psutil.Process().num_fds()
        for _ in range(20):
            _failure(server.url)
        assert psutil.Process().num_fds() <= before


# --- what the client sends ---------------------------------------------------------------


def test_the_handshake_carries_every_header_and_the_token() -> None:
    """Host, Upgrade, Connection, a fresh 16-byte key, version 13, the auth header; no Origin."""
    with RawWsServer() as server:
        for _ in range(2):
            session = WebSocketSession(server.url, timeout_s=2.0, auth_token=TOKEN)
            session.connect()
            assert echo(session, "hi") == 2
            session.close_clean()
        first, second = server.wait_for_endings(2)
    for seen in (first, second):
        assert seen.request_line == "GET /ws HTTP/1.1"
        assert seen.headers["host"] == f"127.0.0.1:{server.port}"
        assert seen.headers["upgrade"] == "websocket"
        assert seen.headers["connection"] == "Upgrade"
        assert seen.headers["sec-websocket-version"] == "13"
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert "origin" not in seen.headers
        assert len(base64.b64decode(seen.headers["sec-websocket-key"])) == 16
    assert first.headers["sec-websocket-key"] != second.headers["sec-websocket-key"]


def test_a_query_token_goes_into_the_request_line() -> None:
    """With --ws-auth-in query the token is a query parameter and no Authorization header is sent."""
    with RawWsServer() as server:
        session = WebSocketSession(server.url, timeout_s=2.0, auth_token=TOKEN, auth_in="query")
        session.connect()
        session.close_clean()
        (seen,) = server.wait_for_endings(1)
    assert seen.query == {"token": [TOKEN]}
    assert "authorization" not in seen.headers


def test_subprotocols_are_offered_and_the_servers_choice_is_checked() -> None:
    """The offered subprotocols are sent; an answer picking one is accepted, an answer picking none is not."""
    with ScriptedServer(lambda h: switching(h, extra="Sec-WebSocket-Protocol: chat\r\n")) as server:
        ws = open_websocket(server.url, (), 2.0, subprotocols=("chat", "superchat"))
        assert ws.getsubprotocol() == "chat"
        ws.shutdown()
        assert server.requests[0]["sec-websocket-protocol"] == "chat,superchat"
    with ScriptedServer(switching) as server:
        message = _failure(server.url, subprotocols=("chat",))
    assert message == "handshake failed: subprotocol not accepted"


def test_a_redirect_on_the_same_host_is_followed() -> None:
    """A 302 to another path of the same host and port is followed."""
    moved = b"HTTP/1.1 302 Found\r\nLocation: /moved\r\nContent-Length: 0\r\n\r\n"

    def answer(headers: dict[str, str]) -> bytes:
        return switching(headers) if " /moved " in headers[":request-line"] else moved

    with ScriptedServer(answer) as server:
        session = WebSocketSession(server.url, timeout_s=2.0)
        session.connect()
        assert echo(session, "moved") == 5
        session.close_clean()
    assert [r[":request-line"].split()[1] for r in server.requests] == ["/ws", "/moved"]


def test_a_redirect_to_another_host_is_refused_and_the_token_stays() -> None:
    """A 302 to another host is not followed: the token (header or query) never goes there."""
    with RawWsServer() as elsewhere:
        moved = f"HTTP/1.1 302 Found\r\nLocation: {elsewhere.url}\r\nContent-Length: 0\r\n\r\n".encode()
        with ScriptedServer(lambda _h: moved) as server:
            session = WebSocketSession(server.url, timeout_s=2.0, auth_token=TOKEN)
            try:
                session.connect()
            except WsFailure as failure:
                message = failure.message
            else:  # pragma: no cover - the assertion below reports it
                message = "connected"
        time.sleep(0.1)
        assert elsewhere.snapshot() == []  # nothing reached the other host
    assert message == "handshake failed: redirect to another host"


def test_connections_come_from_the_given_source_address() -> None:
    """With a source address the server sees the connection come from it."""
    with ScriptedServer(switching) as server:
        for source in ("127.0.0.2", "127.0.0.3"):
            session = WebSocketSession(server.url, timeout_s=2.0, source_address=source)
            session.connect()
            assert echo(session, "from") == 4
            session.close_clean()
        session = WebSocketSession(server.url, timeout_s=2.0, source_address="127.0.0.2")
        session.abort_handshake()  # the handshake-abort style connects from it too
        deadline = time.monotonic() + 2
        while len(server.peers) < 3 and time.monotonic() < deadline:
            time.sleep(10 * MS)
    assert server.peers == ["127.0.0.2", "127.0.0.3", "127.0.0.2"]


def test_users_take_the_source_addresses_in_turn_only_for_a_loopback_server() -> None:
    """The flap context hands out 127.0.0.1..N round-robin for a server on 127/8, none otherwise."""
    context = FlapContext(FlapSettings(source_addresses=3))
    taken = [context.source_address("ws://127.0.0.1:8765/ws") for _ in range(4)]
    assert taken == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]
    assert context.source_address("ws://10.0.0.5:8765/ws") is None
    assert FlapContext().source_address("ws://127.0.0.1:8765/ws") is None
    assert loopback_source_addresses("::1", 4) == ()
    assert loopback_source_addresses("localhost", 2) == ("127.0.0.1", "127.0.0.2")


# --- resolution ---------------------------------------------------------------------------


def test_numeric_hosts_skip_the_resolver_and_names_are_resolved_once_per_ttl(monkeypatch) -> None:
    """127.0.0.1 and ::1 never reach getaddrinfo; a name reaches it again only after the TTL."""
    calls: list[str] = []

    def counting_getaddrinfo(host: str, port: int, *args: object) -> list:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", counting_getaddrinfo)
    monkeypatch.setattr(handshake, "_resolved", {})
    assert addresses("127.0.0.1", 80) == [(socket.AF_INET, ("127.0.0.1", 80))]
    assert addresses("::1", 80) == [(socket.AF_INET6, ("::1", 80, 0, 0))]
    assert calls == []
    addresses("ws.example.test", 80, now=100.0)
    addresses("ws.example.test", 80, now=100.0 + handshake.RESOLVE_TTL_S / 2)
    assert calls == ["ws.example.test"]
    addresses("ws.example.test", 80, now=100.0 + handshake.RESOLVE_TTL_S + 1)
    assert calls == ["ws.example.test", "ws.example.test"]


def test_a_host_name_connects() -> None:
    """`localhost` goes through the resolver and connects."""
    with RawWsServer() as server:
        session = WebSocketSession(server.url.replace("127.0.0.1", "localhost"), timeout_s=2.0)
        session.connect()
        assert echo(session, "name") == 4
        session.close_clean()


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 (made with `openssl req`), and its key."""
    if shutil.which("openssl") is None:
        unavailable("openssl not found: cannot make a certificate for the wss:// test")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    yield cert, key


def test_wss_works_with_a_trusted_certificate_and_fails_without(certificate, monkeypatch) -> None:
    """wss:// verifies the server's certificate: trusted, the session echoes; untrusted, a TLS error."""
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    with ScriptedServer(switching, tls=server_tls) as server:
        assert _failure(server.url) == "TLS: certificate not trusted"
        monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(cert))
        session = WebSocketSession(server.url, timeout_s=2.0, auth_token=TOKEN)
        session.connect()
        assert echo(session, "secure") == 6
        session.close_clean()
    assert server.requests[-1]["authorization"] == f"Bearer {TOKEN}"


# --- websocket-client internals that adopt() relies on -------------------------------------


def test_the_websocket_client_internals_adopt_relies_on_are_unchanged() -> None:
    """Fails when websocket-client changes: the version was checked, and an adopted socket works as connect() leaves it.

    On a new version: check `adopt()` against the library's `WebSocket.connect()` (which
    attributes it sets, how frames are read), then add the version to
    `VERIFIED_WEBSOCKET_CLIENT`.
    """
    assert websocket.__version__ in VERIFIED_WEBSOCKET_CLIENT, (
        f"websocket-client {websocket.__version__} is not verified for scenarios/handshake.adopt()"
    )
    fresh = websocket.WebSocket()
    # AdoptedWebSocket sets every attribute the library's __init__ sets, and only those.
    assert set(vars(fresh)) == handshake.LIBRARY_ATTRIBUTES
    assert fresh.sock is None and fresh.connected is False and fresh.handshake_response is None
    assert fresh.frame_buffer.recv_buffer == []
    # adopt() replaces these with shared objects: they must still be what the library uses.
    assert {"lock", "readlock", "cont_frame"} <= vars(fresh).keys() and "lock" in vars(fresh.frame_buffer)
    # A real connection: the server's first frame comes in the same segment as its 101.
    with ScriptedServer(lambda h: switching(h) + _frame(0x1, b"greeting")) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        key = upgrade.new_websocket_key()
        sock.sendall(upgrade.target(server.url).request(key))
        head, rest = handshake.read_response_head(sock, 2.0)
        assert rest.startswith(b"\x81")  # the frame came with the head: it must reach the frame reader
        status, headers = upgrade.parse_response_head(head)
        upgrade.check_upgrade(status, headers, key, ())
        ws = adopt(sock, status, None, rest, 2.0)
        # It sets what the library's __init__ sets (the frame buffer late), and its own frame reader.
        assert set(vars(ws)) | {"frame_buffer"} == handshake.LIBRARY_ATTRIBUTES | {"frames"}
        assert ws.connected and ws.sock is sock and ws.gettimeout() == 2.0
        # The headers were checked during the handshake and are not kept (memory per connection).
        assert ws.getstatus() == 101 and ws.getheaders() == {} and ws.getsubprotocol() is None
        with Deadline(2.0, "read timed out"):
            assert _recv_message(ws, "hold") == (websocket.ABNF.OPCODE_TEXT, b"greeting")
            ws.send("after")
            assert _recv_message(ws, "hold") == (websocket.ABNF.OPCODE_TEXT, b"after")
        ws.send_close()
        ws.shutdown()
        assert ws.sock is None and not ws.connected


def test_adopted_connections_share_what_they_never_change_but_not_their_timeout() -> None:
    """Locks, continuation state, options per timeout and the handshake answer are shared; settimeout() copies."""
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        first, second, other = (adopt(a, 101, None, b"", t) for (a, _b), t in zip(pairs, (2.0, 2.0, 3.0), strict=True))
        assert "frame_buffer" not in vars(first)  # made only when the library's own recv() asks
        assert first.lock is second.lock is first.readlock is first.frame_buffer.lock
        assert first.cont_frame is second.cont_frame and first.handshake_response is second.handshake_response
        assert first.frame_buffer is not second.frame_buffer and first.frame_buffer is first.frame_buffer
        assert first.sock_opt is second.sock_opt and other.sock_opt is not first.sock_opt
        assert (first.gettimeout(), other.gettimeout(), first.sock.gettimeout()) == (2.0, 3.0, 2.0)
        first.settimeout(7.0)
        assert (first.gettimeout(), first.sock.gettimeout(), second.gettimeout()) == (7.0, 7.0, 2.0)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_a_write_larger_than_the_send_buffer_arrives_whole() -> None:
    """One `send` takes what the kernel buffers; the rest follows, in order, while the peer reads."""
    near, far = socket.socketpair()
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    payload = os.urandom(2 * 1024 * 1024)
    received = bytearray()

    def read_all() -> None:
        while len(received) < len(payload):
            chunk = far.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read_all)  # a greenlet under the suite's gevent patching
    reader.start()
    try:
        adopt(near, 101, None, b"", 5.0).write(payload)
        reader.join(5.0)
        assert bytes(received) == payload
    finally:
        near.close()
        far.close()
