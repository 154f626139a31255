"""A failed WebSocket action, as every part of the pack reports it: pure, shared by the core and the I/O."""

from __future__ import annotations


class WsFailure(Exception):
    """A failed WebSocket action, with a short stable message (no ports, ids or tokens).

    Locust groups failures by `repr`, so `repr` is the message alone.
    """

    def __init__(self, message: str, generator_limit: bool = False) -> None:
        super().__init__(message)
        self.message = message  # what the stats table shows
        self.generator_limit = generator_limit  # the load generator, not the server, hit a limit

    def __repr__(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message
