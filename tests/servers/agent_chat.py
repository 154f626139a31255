"""An agent-chat backend: Starlette on uvicorn, WebSocket at /ws, one agent per session.

The token goes in the query (``/ws?token=...``); when APP_AUTH_TOKEN is set, a handshake
without it is refused with HTTP 403 (closed before accept). On connect the server creates
the session's agent and greets with ``{"type": "connection_established"}``. Then
``{"type": "ping"}`` gets ``{"type": "pong"}``, ``{"type": "message", "content": X}`` gets
``{"type": "agent_response", "content": X, "agent_id": N}``, anything else gets
``{"type": "error", ...}``. The agent is removed when the connection ends.

Faults (``--fault``, repeatable):

- ``leak-agents``: agents are never removed;
- ``leak-agents-on-drop``: an agent is removed only after a close frame; a client that vanished keeps it;
- ``leak-memory``: each session leaves ``--leak-memory-kb`` KiB (default 128) behind;
- ``garble``: user messages are answered with text that is not JSON (greeting and pongs stay valid);
- ``close-1011``: 3 of every 4 sessions are closed with 1011 right after the greeting.

Metrics at GET /metrics: ``app_agents_active``, ``app_connections_active``, ``app_connections_total``
and the process collector's ``process_*``.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from refserver.faults import is_rejected_handshake
from tests.servers.common import (
    AGENT_FAULTS,
    AppMetrics,
    Message,
    SessionAgents,
    build_parser,
    is_drop,
    parse_args,
    serve_uvicorn,
    token_accepted,
    with_metrics,
)

GARBLE = "garble"
CLOSE_1011 = "close-1011"
CLOSE_1011_PCT = 75
FAULTS = {
    **AGENT_FAULTS,
    GARBLE: "answer user messages with text that is not JSON",
    CLOSE_1011: f"close {CLOSE_1011_PCT} of every 100 sessions with 1011 right after the greeting",
}


def answer(message: object, agent_id: int) -> dict[str, object]:
    """The server's answer to one decoded client message."""
    if not isinstance(message, dict):
        return {"type": "error", "error": "not a JSON object"}
    kind = message.get("type")
    if kind == "ping":
        return {"type": "pong"}
    if kind == "message":
        return {"type": "agent_response", "content": message.get("content"), "agent_id": agent_id}
    return {"type": "error", "error": "unknown message type"}


def build_app(faults: frozenset[str], leak_memory_kb: int, auth_token: str | None) -> tuple[Starlette, AppMetrics]:
    """The Starlette app and its metrics."""
    agents = SessionAgents(faults, leak_memory_kb)
    metrics = AppMetrics(lambda: len(agents))
    sessions = itertools.count()  # accepted sessions, for the close-1011 pattern

    async def chat(websocket: WebSocket) -> None:
        if not token_accepted(auth_token, websocket.query_params.get("token")):
            await websocket.close(code=4401)  # before accept: uvicorn answers the handshake with 403
            return
        await websocket.accept()
        client = websocket.client
        agent = agents.open(f"{client.host}:{client.port}" if client else "?", websocket.url.path)
        dropped = False
        try:
            await websocket.send_json({"type": "connection_established"})
            if CLOSE_1011 in faults and is_rejected_handshake(next(sessions), CLOSE_1011_PCT):
                await websocket.close(code=1011, reason="internal error")
                return
            while True:
                received: Message = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    dropped = is_drop(received)
                    return
                text = received.get("text")
                if text is None:
                    await websocket.send_json({"type": "error", "error": "binary frames are not supported"})
                    continue
                agent.record_message(len(text))
                try:
                    decoded = json.loads(text)
                except ValueError:
                    await websocket.send_json({"type": "error", "error": "not JSON"})
                    continue
                reply = answer(decoded, agent.agent_id)
                if GARBLE in faults and reply.get("type") == "agent_response":
                    await websocket.send_text("<<agent crashed>> " + repr(reply)[:40])
                else:
                    await websocket.send_json(reply)
        except WebSocketDisconnect:
            # Only sends raise it here (receive() returns the disconnect): the client vanished.
            dropped = True
        finally:
            agents.close(agent, dropped=dropped)

    return Starlette(routes=[WebSocketRoute("/ws", chat)]), metrics


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser("agent_chat", "Agent-chat WebSocket backend (Starlette on uvicorn).", FAULTS)
    args = parse_args(parser, argv)
    app, metrics = build_app(args.fault, args.leak_memory_kb, args.auth_token)
    return serve_uvicorn(with_metrics(app, metrics), args)


if __name__ == "__main__":
    sys.exit(main())
