"""Which bind addresses keep a child program on this machine."""

from __future__ import annotations

import pytest

from childproc.bind_address import is_loopback_host, resolve_bind_address


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("example.org", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    """Only loopback addresses and 'localhost' count as local."""
    assert is_loopback_host(host) is loopback


def test_resolve_bind_address_gives_one_numeric_address() -> None:
    """A host name resolves to the one numeric address the child binds."""
    assert resolve_bind_address("127.0.0.1", 0)[1] == "127.0.0.1"
    assert resolve_bind_address("localhost", 0)[1] in ("127.0.0.1", "::1")
