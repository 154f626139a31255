"""``--protocol socketio``: Socket.IO 5 over Engine.IO 4, WebSocket transport only.

Clients connect to ``/socket.io/?EIO=4&transport=websocket`` (no HTTP long-polling). The
server sends the Engine.IO open packet, pings every ping interval (a client that misses the
pong for the ping timeout is cut), and speaks Socket.IO on any namespace:

- CONNECT opens the namespace's session and its agent, answered with CONNECT (the session
  id) and then the event ``welcome`` ``{"sid": ...}``. When ``REFSERVER_AUTH_TOKEN`` is set
  the CONNECT auth payload must hold ``{"token": T}`` (or the handshake carried the token as
  a Bearer header or ``?token=``), else the answer is CONNECT_ERROR ``{"message": "Not authorized"}``.
- The event ``chat`` is handled by the agent and acknowledged with ``{"ok": true}`` when the
  client asks for an ack; the event ``message`` is echoed back (and acknowledged the same way);
  other events asking for an ack get ``{"ok": false, "error": "unknown event"}``.
- DISCONNECT ends the namespace's session and frees its agent.

A session that ends while namespaces are still connected frees their agents too when the
client said goodbye in some form (the Engine.IO close packet, or a WebSocket close frame: the
python-socketio client's own disconnect often closes the socket before its DISCONNECT is
written). When the client vanished (no close frame: killed, network cut, missed pongs)
``--leak-agents-on-drop`` keeps them: the classic Socket.IO cleanup bug.

`SocketIOSession` decides (pure); `serve_socketio` moves the frames. The packet encoding is
the pack's own (`scenarios.protocols.socketio`), so client and server share one codec.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from refserver.agents import Agent, AgentRegistry
from refserver.auth import same_secret
from refserver.faults import FaultModes
from scenarios.protocols.socketio import (
    ACK,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EIO_CLOSE,
    EIO_MESSAGE,
    EIO_NOOP,
    EIO_OPEN,
    EIO_PING,
    EIO_PONG,
    EIO_UPGRADE,
    EVENT,
    PacketError,
    decode_packet,
    encode_message,
)

SOCKETIO_PROTOCOL = "socketio"
ENGINE_PATHS = ("/socket.io/", "/socket.io")
DEFAULT_PING_INTERVAL_MS = 25_000  # as Socket.IO servers
DEFAULT_PING_TIMEOUT_MS = 20_000
NOT_AUTHORIZED = {"message": "Not authorized"}
ACK_OK = {"ok": True}
ACK_UNKNOWN = {"ok": False, "error": "unknown event"}


def handshake_problem(request_path: str) -> tuple[int, str] | None:
    """Why a WebSocket handshake is not an Engine.IO v4 WebSocket one (HTTP status, body), or None."""
    parts = urlsplit(request_path)
    if parts.path not in ENGINE_PATHS:
        return 404, "Socket.IO lives at /socket.io/.\n"
    query = parse_qs(parts.query)
    if query.get("EIO") != ["4"] or query.get("transport") != ["websocket"]:
        return 400, "Engine.IO v4 over WebSocket only: /socket.io/?EIO=4&transport=websocket\n"
    return None


def new_sid() -> str:
    """A session id in the shape Socket.IO servers use: 20 URL-safe characters."""
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class SocketIOReply:
    """What the server does about one received frame."""

    send: tuple[str, ...] = ()  # text frames to send, in order
    open_agent: str | None = None  # this namespace's session just connected: create its agent
    free_agent: str | None = None  # the client disconnected this namespace: free its agent
    agent_message: str | None = None  # this namespace's agent handled a message
    pong: bool = False  # the client answered a ping
    close: bool = False  # close the connection (the client's Engine.IO close, or a malformed packet)
    goodbye: bool = False  # the client closed the Engine.IO session itself (its close packet)


IGNORE = SocketIOReply()


class SocketIOSession:
    """The protocol state of one Engine.IO connection: its sid and its connected namespaces."""

    def __init__(
        self,
        *,
        expected_token: str | None,
        handshake_authorized: bool,
        ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS,
        ping_timeout_ms: int = DEFAULT_PING_TIMEOUT_MS,
        max_payload: int = 1_000_000,
    ) -> None:
        self.sid = new_sid()  # the Engine.IO session id
        self._expected_token = expected_token  # None: every CONNECT is accepted
        self._handshake_authorized = handshake_authorized  # the handshake itself carried the token
        self._ping_interval_ms = ping_interval_ms  # announced in the open packet
        self._ping_timeout_ms = ping_timeout_ms  # announced in the open packet
        self._max_payload = max_payload  # announced in the open packet
        self.namespaces: dict[str, str] = {}  # connected namespace -> its Socket.IO session id

    def open_packet(self) -> str:
        """The first frame: Engine.IO open with the session id, no upgrades and the heartbeat timing."""
        handshake = {
            "sid": self.sid,
            "upgrades": [],
            "pingInterval": self._ping_interval_ms,
            "pingTimeout": self._ping_timeout_ms,
            "maxPayload": self._max_payload,
        }
        return EIO_OPEN + json.dumps(handshake, separators=(",", ":"))

    def _authorized(self, auth: Any) -> bool:
        if self._expected_token is None or self._handshake_authorized:
            return True
        token = auth.get("token") if isinstance(auth, Mapping) else None
        return isinstance(token, str) and same_secret(token, self._expected_token)

    def receive(self, message: str | bytes) -> SocketIOReply:
        """Decide the answer to one received frame."""
        if isinstance(message, bytes):
            return IGNORE  # binary attachments: not supported, skipped
        first = message[:1]
        if first == EIO_MESSAGE:
            return self._packet(message[1:])
        if first == EIO_PONG:
            return SocketIOReply(pong=True)
        if first == EIO_PING:
            return SocketIOReply(send=(EIO_PONG + message[1:],))  # Engine.IO v3-style client ping
        if first == EIO_CLOSE:
            return SocketIOReply(close=True, goodbye=True)
        if first in (EIO_NOOP, EIO_UPGRADE):
            return IGNORE
        return SocketIOReply(close=True)

    def _packet(self, text: str) -> SocketIOReply:
        try:
            packet = decode_packet(text)
        except PacketError:
            return SocketIOReply(close=True)  # the protocol says a receiver closes on a malformed packet
        namespace = packet.namespace
        if packet.type == CONNECT:
            if namespace in self.namespaces:
                return SocketIOReply(send=(encode_message(CONNECT, namespace, {"sid": self.namespaces[namespace]}),))
            if not self._authorized(packet.data):
                return SocketIOReply(send=(encode_message(CONNECT_ERROR, namespace, NOT_AUTHORIZED),))
            sid = self.namespaces[namespace] = new_sid()
            welcome = encode_message(EVENT, namespace, ["welcome", {"sid": sid}])
            return SocketIOReply(send=(encode_message(CONNECT, namespace, {"sid": sid}), welcome), open_agent=namespace)
        if namespace not in self.namespaces:
            return IGNORE  # nothing is served on a namespace the client has not connected
        if packet.type == DISCONNECT:
            del self.namespaces[namespace]
            return SocketIOReply(free_agent=namespace)
        if packet.type != EVENT:
            return IGNORE  # acks from the client, binary packets: nothing to do
        event, args = packet.data[0], packet.data[1:]
        send: list[str] = []
        handled = event in ("chat", "message")
        if event == "message":
            send.append(encode_message(EVENT, namespace, ["message", *args]))
        if packet.id is not None:
            send.append(encode_message(ACK, namespace, [ACK_OK if handled else ACK_UNKNOWN], packet.id))
        return SocketIOReply(send=tuple(send), agent_message=namespace if handled else None)


async def _heartbeat(connection: ServerConnection, pong: asyncio.Event, interval_s: float, timeout_s: float) -> None:
    """Ping every interval; a client that does not pong within the timeout is gone: cut it."""
    try:
        while True:
            await asyncio.sleep(interval_s)
            pong.clear()
            await connection.send(EIO_PING)
            try:
                await asyncio.wait_for(pong.wait(), timeout_s)
            except TimeoutError:
                connection.transport.abort()
                return
    except ConnectionClosed:
        return


async def serve_socketio(
    connection: ServerConnection,
    session: SocketIOSession,
    agents: AgentRegistry,
    faults: FaultModes,
    remote: str,
    attributes: dict[str, str],
    ping_interval_s: float,
    ping_timeout_s: float,
) -> None:
    """Serve one Engine.IO connection until it ends; ConnectionClosed propagates to the caller.

    Each connected namespace has an agent. A DISCONNECT frees it; so does the end of the
    session when the client said goodbye (Engine.IO close packet, WebSocket close frame).
    When the client vanished, --leak-agents-on-drop keeps it: the classic Socket.IO cleanup bug.
    """
    open_agents: dict[str, Agent] = {}
    goodbye = False  # the client ended the session itself; else it vanished
    pong = asyncio.Event()
    await connection.send(session.open_packet())
    heartbeat = asyncio.create_task(_heartbeat(connection, pong, ping_interval_s, ping_timeout_s))
    try:
        async for message in connection:
            reply = session.receive(message)
            if reply.pong:
                pong.set()
            if reply.open_agent is not None:
                open_agents[reply.open_agent] = agents.open(remote, reply.open_agent, attributes)
            if reply.agent_message is not None and reply.agent_message in open_agents:
                open_agents[reply.agent_message].record_message(len(message))
            for text in reply.send:
                await connection.send(text)
            if reply.free_agent is not None:
                agent = open_agents.pop(reply.free_agent, None)
                if agent is not None:
                    agents.close(agent.agent_id)
            if reply.close:
                goodbye = reply.goodbye
                await connection.close()
                break
        else:
            goodbye = True  # the iteration ends on a completed close handshake
    except ConnectionClosed as exc:
        goodbye = exc.rcvd is not None  # a close frame came: the client closed, it did not vanish
        raise
    finally:
        heartbeat.cancel()
        for agent in open_agents.values():
            if faults.should_free_agent(dropped=not goodbye):
                agents.close(agent.agent_id)
