"""The one client factory: every connection of a run (flapping users, steady users, the recovery probe) is made here.

`WsClient` turns the run's settings into sessions (URL, auth, headers, Origin,
subprotocols, CA file) and conversations (`Talk` with the protocol's framing), so the
three kinds of client cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from scenarios.continuity import ContinuityCounts, UserCarry
from scenarios.conversation import Step, Variables, substitute
from scenarios.exchange import Report, Talk
from scenarios.protocols import WireProtocol, make_protocol
from scenarios.settings import ORIGIN_FROM_HOST, ClientSettings
from scenarios.ws_session import WebSocketSession


def default_origin(url: str) -> str:
    """The Origin a browser on the server's own site would send: http(s)://host[:port]."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{shown}" if parts.port in (None, default_port) else f"{scheme}://{shown}:{parts.port}"


class WsClient:
    """Makes the sessions and conversations of a run from its settings."""

    def __init__(self, settings: ClientSettings, worker_index: Callable[[], int] = lambda: 0) -> None:
        self.settings = settings  # fixed for this client's life: a change of settings makes a new client
        self.worker_index = worker_index  # this process's Locust worker index (${worker}), read per connection
        self.conversation = settings.conversation  # what each connection says
        self.protocol: WireProtocol = make_protocol(settings.conversation, settings.auth_in == "payload")
        self.opening: tuple[Step, ...] = self.protocol.opening()  # the protocol's own open steps, before on_open
        self._connection_for = lru_cache(maxsize=16)(self._connection_details)

    def _connection_details(self, host: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """URL, header lines and subprotocols for connections to `host`, made once per host."""
        settings = self.settings
        token_only = Variables(token=settings.auth_token)
        lines = [f"{name}: {value}" for name, value in settings.headers]
        lines += [f"{name}: {substitute(value, token_only)}" for name, value in self.conversation.headers]
        url = self.protocol.url(host)
        origin = default_origin(url) if settings.origin is ORIGIN_FROM_HOST else settings.origin
        if origin and not any(line.lower().startswith("origin:") for line in lines):
            lines.append(f"Origin: {origin}")
        offered = tuple(dict.fromkeys(settings.subprotocols + self.protocol.subprotocols))
        return url, tuple(lines), offered

    def session(self, host: str, source_address: str | None = None, timeout_s: float | None = None) -> WebSocketSession:
        """A new, unconnected session to `host` (--host), with this run's handshake."""
        url, headers, subprotocols = self._connection_for(host)
        settings = self.settings
        return WebSocketSession(
            url,
            timeout_s=settings.timeout_s if timeout_s is None else timeout_s,
            auth_token=settings.auth_token if settings.auth_in != "payload" else "",
            auth_in=settings.auth_in,
            source_address=source_address,
            subprotocols=subprotocols,
            headers=headers,
            ca_file=settings.ca_file,
        )

    def talk(
        self, session: WebSocketSession, report: Report, user: int = 0, cycle: int = 0, carry: UserCarry | None = None
    ) -> Talk:
        """The conversation of a connected session; `carry` (a flapping user's) begins a session of its stream."""
        if carry is not None:
            carry.session_started()
        values = dict(carry.persisted) if carry is not None else {}
        variables = Variables(
            user=user,
            worker=self.worker_index(),
            cycle=cycle,
            token=self.settings.auth_token,
            values=values,
            carry=carry,
        )
        framing = self.protocol.connection(carry)
        return Talk(session, framing, variables, report, self.settings.timeout_s, self.conversation)

    def carry(self, counts: ContinuityCounts) -> UserCarry | None:
        """A new flapping user's state across reconnects, counted into `counts`; None when the file needs none."""
        conversation = self.conversation
        persisted = conversation.persisted
        if conversation.stream is None and not self.protocol.resumes and not persisted:
            return None
        stream_counts = counts if conversation.stream is not None else None
        return UserCarry(stream_counts, resume=self.protocol.resumes, persisted=persisted)
