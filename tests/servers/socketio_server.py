"""A Socket.IO 5 server: python-socketio's AsyncServer as ASGI on uvicorn, at /socket.io/, namespaces "/" and "/chat".

On a namespace connect the server creates the session's agent; when APP_AUTH_TOKEN is set the
CONNECT packet's auth payload must be ``{"token": T}``, else the answer is a CONNECT_ERROR
``{"message": "unauthorized"}``. After the CONNECT answer it emits ``welcome`` ``{"sid": SID}``.
The event ``chat`` is acknowledged with ``{"ok": true, "echo": DATA}`` (when the client asks for
an ack). The agent is removed in the disconnect handler.

Engine.IO 4 on the wire (WebSocket transport, ``/socket.io/?EIO=4&transport=websocket``): the server
opens with ``0{"sid":..,"pingInterval":..,"pingTimeout":..}``, pings with ``2`` every
``--ping-interval-s`` (default 25) and drops a client whose ``3`` does not come within
``--ping-timeout-s`` (default 20). Origins: python-engineio's default, same origin only (an
``Origin`` naming the server's own host and port, or none).

Faults (``--fault``, repeatable):

- ``leak-agents-on-drop``: the classic bug: the agent is removed only when the client said goodbye
  (a Socket.IO DISCONNECT packet, or an Engine.IO close packet); a transport that just vanishes keeps it;
- ``leak-agents``: agents are never removed;
- ``leak-memory``: each namespace session leaves ``--leak-memory-kb`` KiB (default 128) behind;
- ``refuse-namespace``: every namespace connect is refused: CONNECT_ERROR ``{"message": "namespace refused"}``.

Metrics at GET /metrics: ``app_agents_active`` (one per namespace session), ``app_connections_active``
and ``app_connections_total`` (WebSocket transports), ``process_*``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as SocketIOConnectionRefused

from refserver.agents import Agent
from tests.servers.common import (
    AGENT_FAULTS,
    AppMetrics,
    SessionAgents,
    build_parser,
    parse_args,
    serve_uvicorn,
    token_accepted,
    with_metrics,
)

logger = logging.getLogger("socketio_server")

REFUSE_NAMESPACE = "refuse-namespace"
FAULTS = {**AGENT_FAULTS, REFUSE_NAMESPACE: "refuse every namespace connect with a CONNECT_ERROR"}
NAMESPACES = ("/", "/chat")
# Bounds the wait for the CONNECT answer to go out before "welcome" is emitted.
WELCOME_WAIT_S = 2.0


class AgentNamespace(socketio.AsyncNamespace):
    """One namespace: an agent per session, welcome, chat acknowledgements."""

    def __init__(self, namespace: str, agents: SessionAgents, faults: frozenset[str], auth_token: str | None) -> None:
        super().__init__(namespace)
        self.agents = agents  # shared by the namespaces
        self.faults = faults  # the --fault names
        self.auth_token = auth_token  # required in the CONNECT auth payload when set
        self.session_agents: dict[str, Agent] = {}  # sid -> the agent of that namespace session

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        """Refuse (CONNECT_ERROR), or create the session's agent and schedule the welcome."""
        if REFUSE_NAMESPACE in self.faults:
            raise SocketIOConnectionRefused("namespace refused")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token_accepted(self.auth_token, token):
            raise SocketIOConnectionRefused("unauthorized")
        self.session_agents[sid] = self.agents.open(environ.get("REMOTE_ADDR", "?"), self.namespace)
        self.server.start_background_task(self._welcome, sid)

    async def _welcome(self, sid: str) -> None:
        # The CONNECT answer goes out after on_connect returns; an event before it would break clients.
        for _ in range(int(WELCOME_WAIT_S / 0.005)):
            if self.server.manager.is_connected(sid, self.namespace):
                await self.emit("welcome", {"sid": sid}, to=sid)
                return
            if sid not in self.session_agents:
                return  # gone already
            await self.server.sleep(0.005)

    async def on_disconnect(self, sid: str, reason: str) -> None:
        """Remove the session's agent, unless a leak fault keeps it."""
        agent = self.session_agents.pop(sid, None)
        if agent is None:
            return
        goodbye = reason in (self.server.reason.CLIENT_DISCONNECT, self.server.reason.SERVER_DISCONNECT)
        freed = self.agents.close(agent, dropped=not goodbye)
        logger.info("session %s on %s ended (%s): agent %s", sid, self.namespace, reason, "freed" if freed else "kept")

    async def on_chat(self, sid: str, data: object) -> dict[str, object]:
        """Acknowledge a chat message with its echo."""
        agent = self.session_agents.get(sid)
        if agent is not None:
            agent.record_message(len(str(data)))
        return {"ok": True, "echo": data}


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser("socketio_server", "Socket.IO server (python-socketio, ASGI on uvicorn).", FAULTS)
    parser.add_argument("--ping-interval-s", type=float, default=25.0, help="Engine.IO ping interval (s)")
    parser.add_argument("--ping-timeout-s", type=float, default=20.0, help="Engine.IO pong deadline (s)")
    args = parse_args(parser, argv)
    agents = SessionAgents(args.fault, args.leak_memory_kb)
    sio = socketio.AsyncServer(
        async_mode="asgi",
        ping_interval=args.ping_interval_s,
        ping_timeout=args.ping_timeout_s,
    )
    for namespace in NAMESPACES:
        sio.register_namespace(AgentNamespace(namespace, agents, args.fault, args.auth_token))
    app = socketio.ASGIApp(sio, socketio_path="socket.io")
    return serve_uvicorn(with_metrics(app, AppMetrics(lambda: len(agents))), args)


if __name__ == "__main__":
    sys.exit(main())
