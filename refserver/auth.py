"""Bearer-token check of WebSocket handshakes; the token comes from the environment only."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

# argv is visible to every local user in `ps`, so the token is read from here only.
AUTH_TOKEN_ENV = "REFSERVER_AUTH_TOKEN"


def same_secret(given: str, expected: str) -> bool:
    """Compare a given secret with the expected one in constant time."""
    # Bytes, because compare_digest refuses non-ASCII str.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(authorization: str | None) -> str | None:
    """Extract the token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_authorized(expected_token: str, authorization: str | None, request_path: str) -> bool:
    """Tell whether a handshake carries the token, as a Bearer header or as ``?token=``."""
    header_token = bearer_token(authorization)
    if header_token is not None and same_secret(header_token, expected_token):
        return True
    query = parse_qs(urlsplit(request_path).query, keep_blank_values=True)
    return any(same_secret(candidate, expected_token) for candidate in query.get("token", []))


def path_without_query(request_path: str) -> str:
    """Drop the query string, which may hold the token, before a path is logged."""
    return urlsplit(request_path).path
