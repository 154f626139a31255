"""A server that accepts every WebSocket handshake (101) and then closes the session: Starlette on uvicorn, /ws.

By default it closes with 4406 ("subprotocol not acceptable", what a GraphQL server answers a
client that did not offer its subprotocol) at once, before any message. With
``--after-first-message`` it reads one message, answers nothing and closes with 1011 (internal
error). ``--close-code N`` picks another code. No session ever gets established, so there are
no agents: ``app_agents_active`` stays 0; ``app_connections_total`` counts the accepted handshakes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tests.servers.common import AppMetrics, build_parser, parse_args, serve_uvicorn, with_metrics

IMMEDIATE_CLOSE_CODE = 4406
AFTER_MESSAGE_CLOSE_CODE = 1011


def build_app(after_first_message: bool, close_code: int) -> Starlette:
    """The app: accept, optionally read one message, close with ``close_code``."""

    async def close_session(websocket: WebSocket) -> None:
        await websocket.accept()
        if after_first_message:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
        await websocket.close(code=close_code, reason="closed by design")

    return Starlette(routes=[WebSocketRoute("/ws", close_session)])


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser("close_after_101", "Accepts the WebSocket handshake, then closes the session.", {})
    parser.add_argument(
        "--after-first-message",
        action="store_true",
        help=f"close after the client's first message (default code {AFTER_MESSAGE_CLOSE_CODE}) instead of at once",
    )
    parser.add_argument(
        "--close-code",
        type=int,
        default=None,
        help=f"close code (default {IMMEDIATE_CLOSE_CODE}, or {AFTER_MESSAGE_CLOSE_CODE} with --after-first-message)",
    )
    args = parse_args(parser, argv)
    default_code = AFTER_MESSAGE_CLOSE_CODE if args.after_first_message else IMMEDIATE_CLOSE_CODE
    app = build_app(args.after_first_message, args.close_code if args.close_code is not None else default_code)
    return serve_uvicorn(with_metrics(app, AppMetrics(lambda: 0)), args)


if __name__ == "__main__":
    sys.exit(main())
