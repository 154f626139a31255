"""The WebSocket opening handshake as pure data and pure checks (RFC 6455, 4.1 and 4.2.2).

Bytes in, decisions out, as websockets' sans-I/O client: the upgrade request for a URL,
where the response head ends, its status and headers, whether it is a valid upgrade, and
whether a redirect may be followed. No sockets: `scenarios.handshake` moves the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_RESPONSE_HEAD_BYTES = 16384  # a longer upgrade response is refused
MAX_REDIRECTS = 3  # as websocket-client
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))  # followed, as websocket-client does


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


def split_response_head(received: bytes) -> tuple[bytes, bytes] | None:
    """The response head (without its blank line) and the bytes after it, or None while it is incomplete.

    Raises HandshakeError once the head is longer than `MAX_RESPONSE_HEAD_BYTES`.
    """
    end = received.find(b"\r\n\r\n")
    if end > MAX_RESPONSE_HEAD_BYTES or (end < 0 and len(received) > MAX_RESPONSE_HEAD_BYTES):
        raise HandshakeError("handshake failed: response header too large")
    if end < 0:
        return None
    return received[:end], received[end + 4 :]


_OWS = " \t"  # optional white space around a header's name and value (RFC 9110, 5.6.3)


def parse_response_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-case; repeated headers joined with ", ") of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    code = status_line[1] if len(status_line) > 1 else ""
    if not status_line[0].startswith("HTTP/") or not (len(code) == 3 and code.isascii() and code.isdigit()):
        raise HandshakeError("handshake failed: bad HTTP response")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise HandshakeError("handshake failed: bad HTTP response")
        key = name.strip(_OWS).lower()
        text = value.strip(_OWS)
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(code), headers


def _has_token(value: str | None, token: str) -> bool:
    """Whether the comma-separated header `value` lists `token` (case-insensitive)."""
    if value is None:
        return False
    value = value.lower()
    if value == token:  # the usual answer: the one token alone
        return True
    return token in (part.strip(_OWS) for part in value.split(","))


def check_upgrade(status: int, headers: Mapping[str, str], key: str, subprotocols: tuple[str, ...]) -> str | None:
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


def redirect_url(url: str, status: int, headers: Mapping[str, str]) -> str | None:
    """Where a redirect answer to the upgrade of `url` leads, or None when the answer is no redirect.

    Raises HandshakeError for a redirect to another scheme, host or port: the token (header
    or query) never leaves for somewhere else.
    """
    if status not in REDIRECT_STATUSES or "location" not in headers:
        return None
    redirected = urljoin(url, headers["location"])
    if _origin(redirected) != _origin(url):
        raise HandshakeError("handshake failed: redirect to another host")
    return redirected
