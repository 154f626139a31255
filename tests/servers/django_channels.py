"""A Django Channels app (ASGI on uvicorn): a JSON echo consumer behind ``AllowedHostsOriginValidator``.

As in the Channels tutorial, the WebSocket router is wrapped in ``AllowedHostsOriginValidator``
with ``ALLOWED_HOSTS = ["127.0.0.1", "localhost"]`` (settings: django_channels_settings.py, no
database). A handshake whose ``Origin`` header is missing, or names another host, is refused
with HTTP 403; ``Origin: http://127.0.0.1:PORT`` or ``http://localhost:PORT`` (any port, any
scheme) passes, as stock ``websocket-client`` sends it. The consumer at /ws/echo/ echoes each
JSON text message; text that is not JSON gets ``{"type": "error", "error": "not JSON"}``.
Each consumer owns an agent from connect to disconnect.

Faults (``--fault``, repeatable): ``leak-agents``, ``leak-agents-on-drop``, ``leak-memory``
(as in tests/servers/common.py).

Metrics at GET /metrics: ``app_agents_active``, ``app_connections_active``, ``app_connections_total``,
``process_*``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from tests.servers.common import (
    AGENT_FAULTS,
    AppMetrics,
    AsgiApp,
    Receive,
    Scope,
    Send,
    SessionAgents,
    build_parser,
    is_drop,
    parse_args,
    serve_uvicorn,
    with_metrics,
)

SETTINGS_MODULE = "tests.servers.django_channels_settings"
PATH = "ws/echo/"


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Plain HTTP other than /metrics: 404."""
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Not found.\n"})


def build_app(agents: SessionAgents) -> AsgiApp:
    """The Channels application: origin-validated WebSocket routing to the echo consumer."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.urls import path

    class EchoConsumer(AsyncWebsocketConsumer):
        """Echoes JSON; owns an agent for its lifetime."""

        agent = None  # set at connect
        dropped = False  # the client vanished without a close frame

        async def connect(self) -> None:
            client = self.scope.get("client") or ("?", 0)
            self.agent = agents.open(f"{client[0]}:{client[1]}", self.scope["path"])
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            if text_data is None:
                await self.send(text_data=json.dumps({"type": "error", "error": "binary frames are not supported"}))
                return
            try:
                decoded = json.loads(text_data)
            except ValueError:
                await self.send(text_data=json.dumps({"type": "error", "error": "not JSON"}))
                return
            if self.agent is not None:
                self.agent.record_message(len(text_data))
            await self.send(text_data=json.dumps(decoded))

        async def websocket_disconnect(self, message: dict[str, Any]) -> None:
            self.dropped = is_drop(message)
            await super().websocket_disconnect(message)

        async def disconnect(self, code: int) -> None:
            if self.agent is not None:
                agents.close(self.agent, dropped=self.dropped)
                self.agent = None

    application = ProtocolTypeRouter(
        {
            "http": not_found,
            "websocket": AllowedHostsOriginValidator(URLRouter([path(PATH, EchoConsumer.as_asgi())])),
        }
    )
    return application


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser(
        "django_channels", "Django Channels JSON echo behind AllowedHostsOriginValidator.", AGENT_FAULTS
    )
    args = parse_args(parser, argv)
    agents = SessionAgents(args.fault, args.leak_memory_kb)
    return serve_uvicorn(with_metrics(build_app(agents), AppMetrics(lambda: len(agents))), args)


if __name__ == "__main__":
    sys.exit(main())
