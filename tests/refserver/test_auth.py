"""Token checks, without sockets."""

from __future__ import annotations

import pytest

from refserver.auth import bearer_token, is_authorized, path_without_query


@pytest.mark.parametrize(
    ("authorization", "path", "allowed"),
    [
        ("Bearer s3cret", "/", True),
        ("bearer s3cret", "/", True),
        (None, "/?token=s3cret", True),
        (None, "/chat?a=1&token=s3cret", True),
        ("Bearer wrong", "/?token=s3cret", True),
        (None, "/", False),
        ("Bearer wrong", "/", False),
        ("Basic s3cret", "/", False),
        ("Bearer", "/", False),
        (None, "/?token=", False),
        (None, "/?token=s3cret2", False),
    ],
)
def test_is_authorized(authorization: str | None, path: str, allowed: bool) -> None:
    """The token is accepted as a Bearer header or a token query parameter, nothing else."""
    assert is_authorized("s3cret", authorization, path) is allowed


def test_non_ascii_token_does_not_crash() -> None:
    """compare_digest gets bytes, so a non-ASCII token is compared, not raised on."""
    assert is_authorized("clé", "Bearer clé", "/")
    assert not is_authorized("clé", "Bearer cle", "/")


def test_bearer_token_and_path_without_query() -> None:
    """Helpers extract the bearer token and strip the query before logging."""
    assert bearer_token("Bearer  abc ") == "abc"
    assert bearer_token("Token abc") is None
    assert path_without_query("/ws?token=abc") == "/ws"
