"""Handshake options as the server sees them: --ws-header, --ws-origin, --ws-subprotocol and --ws-ca-file.

Sessions come from `WsClient` (the one factory every user of a run goes through) and
connect to scripted servers on 127.0.0.1 that record each request head; wss:// runs on
a self-signed certificate made for IP 127.0.0.1 only.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from scenarios.client import WsClient
from scenarios.settings import ClientSettings
from scenarios.ws_session import WsFailure
from tests.scenarios.test_handshake import ScriptedServer, certificate, switching  # noqa: F401 (a fixture)
from tests.servers.ws_echo import echo

HEADER_VALUE = "hdr-unit-s3cret"


def _connect_and_echo(client: WsClient, url: str) -> None:
    """Open a session from `client`, prove it carries messages, and close it cleanly."""
    session = client.session(url)
    session.connect()
    assert echo(session, "through") == 7
    session.close_clean()


def _failure(client: WsClient, url: str) -> str:
    session = client.session(url)
    with pytest.raises(WsFailure) as raised:
        session.connect()
    assert not session.is_open
    return raised.value.message


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:  # noqa: F811 (the imported fixture)
    """A server-side TLS context with the self-signed certificate for 127.0.0.1."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# --- headers and Origin --------------------------------------------------------------------


def test_extra_headers_and_the_default_origin_reach_the_server() -> None:
    """--ws-header lines are sent as given, with the Origin a browser on the server's own site would send."""
    client = WsClient(ClientSettings(timeout_s=2.0, headers=(("X-Api-Key", HEADER_VALUE), ("X-Trace", "t1"))))
    with ScriptedServer(switching) as server:
        _connect_and_echo(client, server.url)
    request = server.requests[-1]
    assert request["x-api-key"] == HEADER_VALUE
    assert request["x-trace"] == "t1"
    assert request["origin"] == f"http://127.0.0.1:{server.port}"


def test_an_empty_origin_sends_no_origin_header() -> None:
    """--ws-origin '' leaves the Origin header out of the handshake altogether."""
    client = WsClient(ClientSettings(timeout_s=2.0, origin=""))
    with ScriptedServer(switching) as server:
        _connect_and_echo(client, server.url)
    assert "origin" not in server.requests[-1]


def test_a_given_origin_replaces_the_derived_one() -> None:
    """--ws-origin with a value sends exactly that value, once."""
    client = WsClient(ClientSettings(timeout_s=2.0, origin="https://app.example"))
    with ScriptedServer(switching) as server:
        _connect_and_echo(client, server.url)
    assert server.requests[-1]["origin"] == "https://app.example"


def test_an_origin_given_as_a_header_wins_over_the_derived_one() -> None:
    """--ws-header 'Origin: ...' is the Origin sent; the derived one is not added beside it."""
    client = WsClient(ClientSettings(timeout_s=2.0, headers=(("Origin", "https://other.example"),)))
    with ScriptedServer(switching) as server:
        _connect_and_echo(client, server.url)
    assert server.requests[-1]["origin"] == "https://other.example"


def test_subprotocols_are_offered_and_the_servers_choice_accepted() -> None:
    """--ws-subprotocol a,b offers both; a 101 choosing one of them opens the session."""
    client = WsClient(ClientSettings(timeout_s=2.0, subprotocols=("chat.v2", "chat.v1")))
    with ScriptedServer(lambda h: switching(h, extra="Sec-WebSocket-Protocol: chat.v1\r\n")) as server:
        _connect_and_echo(client, server.url)
    offered = [name.strip() for name in server.requests[-1]["sec-websocket-protocol"].split(",")]
    assert offered == ["chat.v2", "chat.v1"]


# --- wss:// with a private CA ---------------------------------------------------------------


def test_a_ca_file_makes_a_self_signed_server_trusted(
    certificate: tuple[Path, Path],  # noqa: F811 (the imported fixture)
    server_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With --ws-ca-file naming the server's certificate, wss:// connects and echoes; without it, not trusted."""
    monkeypatch.delenv("WEBSOCKET_CLIENT_CA_BUNDLE", raising=False)  # trust comes from ca_file alone
    cert, _key = certificate
    with ScriptedServer(switching, tls=server_tls) as server:
        assert _failure(WsClient(ClientSettings(timeout_s=2.0)), server.url) == "TLS: certificate not trusted"
        _connect_and_echo(WsClient(ClientSettings(timeout_s=2.0, ca_file=str(cert))), server.url)
    assert server.requests[-1]["origin"] == f"https://127.0.0.1:{server.port}"  # wss:// derives an https Origin


def test_a_trusted_certificate_for_another_name_is_a_host_name_mismatch(
    certificate: tuple[Path, Path],  # noqa: F811 (the imported fixture)
    server_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The certificate covers IP 127.0.0.1 only: reaching the same server as localhost fails, host name mismatch."""
    monkeypatch.delenv("WEBSOCKET_CLIENT_CA_BUNDLE", raising=False)
    cert, _key = certificate
    client = WsClient(ClientSettings(timeout_s=2.0, ca_file=str(cert)))
    with ScriptedServer(switching, tls=server_tls) as server:
        by_name = server.url.replace("127.0.0.1", "localhost")
        assert _failure(client, by_name) == "TLS: host name mismatch"
        _connect_and_echo(client, server.url)  # the same client and server by the certificate's address: fine


def test_aborted_handshakes_use_the_ca_file_too(
    certificate: tuple[Path, Path],  # noqa: F811 (the imported fixture)
    server_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An aborted handshake (--flap-disconnect abort-handshake) trusts --ws-ca-file as connect does."""
    monkeypatch.delenv("WEBSOCKET_CLIENT_CA_BUNDLE", raising=False)
    cert, _key = certificate
    with ScriptedServer(switching, tls=server_tls) as server:
        with pytest.raises(WsFailure, match="TLS: certificate not trusted"):
            WsClient(ClientSettings(timeout_s=2.0)).session(server.url).abort_handshake()
        WsClient(ClientSettings(timeout_s=2.0, ca_file=str(cert))).session(server.url).abort_handshake()
