"""The opening handshake's pure checks (scenarios.upgrade), on scripted bytes: no socket."""

from __future__ import annotations

import pytest

from scenarios.upgrade import (
    MAX_RESPONSE_HEAD_BYTES,
    HandshakeError,
    check_upgrade,
    expected_accept,
    parse_response_head,
    redirect_url,
    split_response_head,
    target,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455, 1.3


def upgrade_headers(**extra: str) -> dict[str, str]:
    """The headers of a valid 101 answer to KEY."""
    return {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-accept": expected_accept(KEY).decode(),
    } | extra


def test_the_accept_value_is_the_one_rfc_6455_gives_for_its_sample_key() -> None:
    """RFC 6455's worked example: the sample nonce's accept value."""
    assert expected_accept(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_request_carries_host_port_resource_subprotocols_and_extra_headers_around_the_key() -> None:
    """The upgrade request is built once per URL, with the key in its place."""
    where = target("ws://127.0.0.1:8765/chat?room=1", ("Authorization: Bearer x",), ("mqtt",))
    request = where.request(KEY).decode()
    assert request.startswith("GET /chat?room=1 HTTP/1.1\r\nUpgrade: websocket\r\nHost: 127.0.0.1:8765\r\n")
    assert f"Sec-WebSocket-Key: {KEY}\r\n" in request
    assert "Sec-WebSocket-Protocol: mqtt\r\n" in request and "Authorization: Bearer x\r\n" in request
    assert request.endswith("\r\n\r\n")
    assert (where.host, where.port, where.secure) == ("127.0.0.1", 8765, False)
    assert target("wss://[::1]/").port == 443 and target("wss://[::1]/").host == "::1"


def test_a_url_that_is_not_ws_is_refused() -> None:
    """http:// is not a WebSocket URL."""
    with pytest.raises(HandshakeError, match="not a ws:// or wss:// URL"):
        target("http://127.0.0.1/")


def test_the_head_is_split_from_the_frames_that_came_with_it_once_complete() -> None:
    """An incomplete head waits; a complete one gives the head and what followed."""
    assert split_response_head(b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n") is None
    assert split_response_head(b"HTTP/1.1 101 X\r\nA: b\r\n\r\n\x81\x02hi") == (
        b"HTTP/1.1 101 X\r\nA: b",
        b"\x81\x02hi",
    )


def test_an_endless_head_is_refused_once_over_the_limit() -> None:
    """A head longer than MAX_RESPONSE_HEAD_BYTES is refused, finished or not."""
    with pytest.raises(HandshakeError, match="too large"):
        split_response_head(b"X" * (MAX_RESPONSE_HEAD_BYTES + 1))


def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    """Headers as one mapping: lower-case names, repeats joined with a comma."""
    status, headers = parse_response_head(b"HTTP/1.1 101 Switching\r\nConnection: keep-alive\r\nconnection: Upgrade")
    assert status == 101 and headers == {"connection": "keep-alive, Upgrade"}


@pytest.mark.parametrize(
    "head",
    [
        b"garbage",
        b"HTTP/1.1 abc",
        b"HTTP/1.1 101 OK\r\nno colon here",
        b"HTTP/1.1 1\xb201 OK",  # a digit, but not an ASCII one
        b"HTTP/1.1 1010 OK",  # a status code has three digits
        b"HTTP/1.1",
    ],
)
def test_a_garbled_head_is_a_bad_http_response(head: bytes) -> None:
    """A status line or header line that is not HTTP is refused with one stable message."""
    with pytest.raises(HandshakeError, match="bad HTTP response"):
        parse_response_head(head)


def test_a_valid_upgrade_passes_and_names_the_chosen_subprotocol() -> None:
    """101, both upgrade headers, the right accept, an offered subprotocol."""
    assert check_upgrade(101, upgrade_headers(), KEY, ()) is None
    assert check_upgrade(101, upgrade_headers(connection="keep-alive, \tUpgrade "), KEY, ()) is None
    assert check_upgrade(101, upgrade_headers(**{"sec-websocket-protocol": "MQTT"}), KEY, ("mqtt",)) == "mqtt"


@pytest.mark.parametrize(
    ("status", "headers", "offered", "message"),
    [
        (503, upgrade_headers(), (), "handshake rejected: HTTP 503"),
        (101, upgrade_headers(upgrade="h2c"), (), "not a WebSocket upgrade"),
        (101, upgrade_headers(connection="close"), (), "not a WebSocket upgrade"),
        (101, upgrade_headers(upgrade="websocket\xa0"), (), "not a WebSocket upgrade"),  # not HTTP white space
        (101, upgrade_headers(connection="keep-alive, \x85Upgrade"), (), "not a WebSocket upgrade"),
        (101, upgrade_headers(**{"sec-websocket-accept": "AAAA"}), (), "bad Sec-WebSocket-Accept"),
        (101, upgrade_headers(), ("mqtt",), "subprotocol not accepted"),
        (101, upgrade_headers(**{"sec-websocket-protocol": "wamp"}), ("mqtt",), "subprotocol not accepted"),
    ],
)
def test_an_answer_that_is_not_a_valid_upgrade_fails_with_a_stable_message(status, headers, offered, message) -> None:
    """Every way a 101 can be wrong has its own words, none quoting the server."""
    with pytest.raises(HandshakeError, match=message):
        check_upgrade(status, headers, KEY, offered)


def test_redirects_are_followed_only_on_the_same_scheme_host_and_port() -> None:
    """A relative or same-origin Location is followed; another host is refused; a 200 is no redirect."""
    url = "ws://127.0.0.1:9000/a"
    assert redirect_url(url, 302, {"location": "/b"}) == "ws://127.0.0.1:9000/b"
    assert redirect_url(url, 200, {"location": "/b"}) is None
    assert redirect_url(url, 301, {}) is None
    with pytest.raises(HandshakeError, match="redirect to another host"):
        redirect_url(url, 307, {"location": "ws://127.0.0.2:9000/a"})
