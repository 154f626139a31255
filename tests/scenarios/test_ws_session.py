"""The WebSocket session's pure parts: the upgrade request of a handshake abort, failure messages."""

from __future__ import annotations

import base64
import errno

import pytest

from scenarios.ws_session import describe_failure, new_websocket_key, upgrade_request, url_with_token


def _lines(request: bytes) -> list[str]:
    assert request.endswith(b"\r\n\r\n")
    return request.decode("latin-1").split("\r\n")[:-2]


def test_the_upgrade_request_has_every_handshake_header() -> None:
    """Request line, Host with a non-default port, Upgrade, Connection, key, version, extra headers."""
    key = "a2V5a2V5a2V5a2V5a2V5aw=="
    lines = _lines(upgrade_request("ws://127.0.0.1:8765/ws?a=1", ["Authorization: Bearer t"], key))
    assert lines == [
        "GET /ws?a=1 HTTP/1.1",
        "Upgrade: websocket",
        "Host: 127.0.0.1:8765",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Connection: Upgrade",
        "Authorization: Bearer t",
    ]


@pytest.mark.parametrize(
    ("url", "request_line", "host"),
    [
        ("ws://example.test", "GET / HTTP/1.1", "Host: example.test"),
        ("ws://example.test:80/x", "GET /x HTTP/1.1", "Host: example.test"),
        ("wss://example.test:443/x", "GET /x HTTP/1.1", "Host: example.test"),
        ("wss://example.test:80/x", "GET /x HTTP/1.1", "Host: example.test:80"),
        ("ws://[::1]:9000/ws", "GET /ws HTTP/1.1", "Host: [::1]:9000"),
    ],
)
def test_the_host_header_leaves_out_the_default_port(url: str, request_line: str, host: str) -> None:
    """As websocket-client does: the scheme's default port is not written, IPv6 hosts are bracketed."""
    lines = _lines(upgrade_request(url, [], "k"))
    assert lines[0] == request_line
    assert host in lines


def test_a_query_token_goes_into_the_request_line() -> None:
    """With the token in the query the request line carries it (the URL is never logged)."""
    lines = _lines(upgrade_request(url_with_token("ws://h:1/ws", "s3cret"), [], "k"))
    assert lines[0] == "GET /ws?token=s3cret HTTP/1.1"


def test_keys_are_fresh_16_byte_values() -> None:
    """Every handshake abort gets its own Sec-WebSocket-Key."""
    keys = {new_websocket_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(base64.b64decode(key)) == 16 for key in keys)


def test_a_socket_the_server_already_dropped_is_described_stably() -> None:
    """ENOTCONN (shutting down a connection the server reset) reads as closed by the server."""
    failure = describe_failure(OSError(errno.ENOTCONN, "Transport endpoint is not connected"), "abrupt")
    assert failure.message == "connection closed by server during abrupt"


def test_local_port_exhaustion_is_the_generators_limit_not_the_servers() -> None:
    """EADDRNOTAVAIL and EMFILE are reported as load-generator limits, with stable messages."""
    import errno

    from scenarios.ws_session import describe_failure

    ports = describe_failure(OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "connect")
    assert (ports.message, ports.generator_limit) == ("no free local port (load generator limit)", True)
    files = describe_failure(OSError(errno.EMFILE, "Too many open files"), "connect")
    assert (files.message, files.generator_limit) == ("too many open files (load generator limit)", True)
    refused = describe_failure(ConnectionRefusedError(), "connect")
    assert (refused.message, refused.generator_limit) == ("connection refused", False)
