"""Text protocols over WebSocket, each written from its published specification, for the examples' tests.

``--protocol NAME`` picks one (any path serves it; the tests use each protocol's usual path):

- ``stomp``: STOMP 1.2 (stomp.github.io/stomp-specification-1.2.html), subprotocol ``v12.stomp``:
  CONNECT/STOMP -> CONNECTED, SUBSCRIBE, SEND -> MESSAGE to the destination's subscribers,
  UNSUBSCRIBE, a ``receipt`` header -> RECEIPT, DISCONNECT. A client that offers heart-beats
  (``heart-beat:cx,cy`` with cx > 0) and then stays silent for 2 x cx ms is dropped.
- ``nats``: the NATS client protocol (docs.nats.io, "Client Protocol"), in binary frames as
  nats-server sends it: INFO on connect, CONNECT, PING/PONG, SUB, UNSUB, PUB -> MSG. The server
  PINGs every ``--ping-s``; two PINGs unanswered and it sends ``-ERR 'Stale Connection'`` and closes.
- ``signalr``: ASP.NET Core SignalR's JSON hub protocol (dotnet/aspnetcore, HubProtocol.md),
  records ended by 0x1e: the handshake ``{"protocol":"json","version":1}`` -> ``{}``, then hub
  methods ``JoinGroup(group)`` and ``SendToGroup(group, text)`` (-> ``ReceiveMessage(text)`` to the
  group). It pings (``{"type":6}``) every ``--ping-s`` and closes a client silent for ``--timeout-s``.
- ``centrifugo``: Centrifugo's bidirectional JSON protocol (centrifugal.dev, client protocol):
  newline-separated commands and replies, ``connect``, ``subscribe``, ``publish`` (a reply and the
  push in one frame). It pings with ``{}`` every ``--ping-s``; no ``{}`` back within ``--timeout-s``
  and it closes with 3012 (no pong).
- ``phoenix``: Phoenix Channels, the V2 JSON serializer (``[join_ref, ref, topic, event, payload]``,
  hexdocs.pm/phoenix, "Writing a Channels Client"): ``phx_join``, ``phx_leave``, ``heartbeat`` on
  topic ``phoenix``, ``new_msg`` broadcast to the topic. No heartbeat for ``--timeout-s`` and it closes.
- ``actioncable``: Action Cable (Rails guides, subprotocol ``actioncable-v1-json``): ``welcome``,
  a ``ping`` every ``--ping-s``, ``subscribe`` -> ``confirm_subscription``, ``message`` with
  ``{"action":"speak","body":...}`` broadcast to the channel's subscribers.
- ``pusher``: the Pusher Channels protocol 7 (pusher.com, "Pusher Channels Protocol"), at
  ``/app/KEY``: ``pusher:connection_established`` with a ``socket_id`` (JSON in a string), public
  and private channels (auth ``KEY:HMAC-SHA256(secret, "socket_id:channel")``, the secret from
  APP_AUTH_TOKEN), ``pusher:ping``/``pusher:pong`` both ways. After ``--ping-s`` of silence from
  the client it sends ``pusher:ping``; no ``pusher:pong`` within ``--timeout-s`` and it closes 4201.

Faults: ``close-after-subscribe`` closes the connection right after acknowledging a subscribe
(join); ``no-pong`` never answers the client's ping (NATS ``PING``, ``pusher:ping``).
Metrics at GET /metrics: ``app_agents_active`` (open sessions) and the common ones.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.servers.common import METRICS_PATH, AppMetrics, announce, bind, build_parser, parse_args

CLOSE_AFTER_SUBSCRIBE = "close-after-subscribe"
NO_PONG = "no-pong"
FAULTS = {
    CLOSE_AFTER_SUBSCRIBE: "close the connection right after acknowledging a subscribe (join)",
    NO_PONG: "never answer the client's ping (NATS PING, pusher:ping)",
}
SUBPROTOCOLS = {"stomp": "v12.stomp", "actioncable": "actioncable-v1-json"}
RS = "\x1e"  # SignalR's record separator

_ids = itertools.count(1)


def compact(value: Any) -> str:
    """JSON without spaces."""
    return json.dumps(value, separators=(",", ":"))


class Session:
    """One client connection: its socket, when it last spoke, what it subscribed to."""

    def __init__(self, ws: ServerConnection, server: TextProtocolServer) -> None:
        self.ws = ws  # the connection
        self.server = server  # the rooms, options and faults
        self.last_heard = time.monotonic()  # when the client last sent anything
        self.topics: dict[str, Any] = {}  # what it subscribed to -> its subscription id (or None)
        self.outstanding_pings = 0  # pings sent and not answered
        self.state: dict[str, Any] = {}  # per-protocol state (socket_id, heart-beat)

    async def send(self, text: str) -> None:
        """A text frame."""
        await self.ws.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (the close handshake, bounded by the library)."""
        await self.ws.close(code, reason)


class TextProtocolServer:
    """The rooms shared by the sessions, and the protocol handlers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.protocol: str = args.protocol  # which protocol it speaks
        self.ping_s: float = args.ping_s  # the server's ping period
        self.timeout_s: float = args.timeout_s  # how long it waits for the client's answer or heartbeat
        self.faults: frozenset[str] = args.fault  # switched-on bugs
        self.secret: str | None = args.auth_token  # Pusher's app secret (private channels)
        self.rooms: dict[str, set[Session]] = defaultdict(set)  # topic -> its subscribers
        self.sessions: set[Session] = set()  # open connections
        self.metrics = AppMetrics(lambda: len(self.sessions))  # /metrics

    def subscribe(self, session: Session, topic: str, sub_id: Any = None) -> None:
        """Put a session in a room."""
        session.topics[topic] = sub_id
        self.rooms[topic].add(session)

    def unsubscribe(self, session: Session, topic: str) -> None:
        """Take a session out of a room."""
        session.topics.pop(topic, None)
        self.rooms[topic].discard(session)

    async def after_subscribe(self, session: Session) -> None:
        """The close-after-subscribe fault."""
        if CLOSE_AFTER_SUBSCRIBE in self.faults:
            await session.close(1011, "fault")

    # --- the connection --------------------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one connection with the protocol's handler and its timer task."""
        session = Session(ws, self)
        self.sessions.add(session)
        self.metrics.connections_total.inc()
        self.metrics.connections_active += 1
        handler = getattr(self, f"_{self.protocol}")
        timer = asyncio.create_task(self._timer(session))
        try:
            await handler(session)
        except ConnectionClosed:
            pass
        finally:
            timer.cancel()
            for topic in list(session.topics):
                self.unsubscribe(session, topic)
            self.sessions.discard(session)
            self.metrics.connections_active -= 1

    async def _messages(self, session: Session) -> Any:
        async for message in session.ws:
            session.last_heard = time.monotonic()
            yield message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def _timer(self, session: Session) -> None:
        """The protocol's pings and its check of the client's heartbeat or answers."""
        tick = getattr(self, f"_{self.protocol}_tick", None)
        if tick is None:
            return
        try:
            while True:
                await asyncio.sleep(min(self.ping_s, self.timeout_s) / 2)
                await tick(session)
        except ConnectionClosed:
            pass

    def _quiet_for(self, session: Session) -> float:
        return time.monotonic() - session.last_heard

    # --- STOMP 1.2 -------------------------------------------------------------------------------

    async def _stomp(self, session: Session) -> None:
        buffer = ""
        async for text in self._messages(session):
            buffer += text
            while "\0" in buffer:
                frame, buffer = buffer.split("\0", 1)
                frame = frame.lstrip("\r\n")  # heart-beats (EOLs) between frames
                if frame and not await self._stomp_frame(session, frame):
                    return
            buffer = buffer.lstrip("\r\n")

    async def _stomp_frame(self, session: Session, frame: str) -> bool:
        head, _, body = frame.partition("\n\n")
        command, *lines = head.split("\n")
        headers = dict(line.split(":", 1) for line in lines if ":" in line)
        if command in ("CONNECT", "STOMP"):
            client_beat = int(headers.get("heart-beat", "0,0").split(",")[0] or 0)
            session.state["heart_beat_s"] = client_beat / 1000.0
            await session.send(f"CONNECTED\nversion:1.2\nheart-beat:0,{client_beat}\nsession:{next(_ids)}\n\n\0")
        elif command == "SUBSCRIBE":
            self.subscribe(session, headers["destination"], headers["id"])
            await self._stomp_receipt(session, headers)
            await self.after_subscribe(session)
        elif command == "UNSUBSCRIBE":
            for topic, sub_id in list(session.topics.items()):
                if sub_id == headers.get("id"):
                    self.unsubscribe(session, topic)
            await self._stomp_receipt(session, headers)
        elif command == "SEND":
            destination = headers["destination"]
            for member in list(self.rooms[destination]):
                message = (
                    f"MESSAGE\nsubscription:{member.topics[destination]}\nmessage-id:{next(_ids)}\n"
                    f"destination:{destination}\ncontent-length:{len(body.encode())}\n\n{body}\0"
                )
                await member.send(message)
            await self._stomp_receipt(session, headers)
        elif command == "DISCONNECT":
            await self._stomp_receipt(session, headers)
            return False
        else:
            await session.send("ERROR\nmessage:unknown command\n\n\0")
            await session.close()
            return False
        return True

    async def _stomp_receipt(self, session: Session, headers: dict[str, str]) -> None:
        if "receipt" in headers:
            await session.send(f"RECEIPT\nreceipt-id:{headers['receipt']}\n\n\0")

    async def _stomp_tick(self, session: Session) -> None:
        beat_s = session.state.get("heart_beat_s", 0)
        if beat_s and self._quiet_for(session) > 2 * beat_s:
            await session.send("ERROR\nmessage:no heart-beat\n\n\0")
            await session.close()

    # --- NATS ------------------------------------------------------------------------------------

    async def _nats(self, session: Session) -> None:
        info = {"server_id": "flap-test", "version": "2.10.0", "proto": 1, "headers": False, "max_payload": 1048576}
        await session.ws.send(f"INFO {compact(info)}\r\n".encode())
        buffer = ""
        async for text in self._messages(session):
            buffer += text
            while "\r\n" in buffer:
                line, rest = buffer.split("\r\n", 1)
                verb, *args = line.split(" ")
                verb = verb.upper()
                if verb == "PUB":
                    size = int(args[-1])
                    if len(rest) < size + 2:
                        break  # the payload is still coming
                    payload, buffer = rest[:size], rest[size + 2 :]
                    for member in list(self.rooms[args[0]]):
                        await member.ws.send(f"MSG {args[0]} {member.topics[args[0]]} {size}\r\n{payload}\r\n".encode())
                    continue
                buffer = rest
                if verb == "PING":
                    if NO_PONG not in self.faults:
                        await session.ws.send(b"PONG\r\n")
                elif verb == "PONG":
                    session.outstanding_pings = 0
                elif verb == "SUB":
                    self.subscribe(session, args[0], args[-1])
                    await self.after_subscribe(session)
                elif verb == "UNSUB":
                    for topic, sid in list(session.topics.items()):
                        if sid == args[0]:
                            self.unsubscribe(session, topic)
                elif verb != "CONNECT":
                    await session.ws.send(b"-ERR 'Unknown Protocol Operation'\r\n")
                    await session.close()
                    return

    async def _nats_tick(self, session: Session) -> None:
        if time.monotonic() - session.state.get("pinged", 0) < self.ping_s:
            return
        if session.outstanding_pings >= 2:
            await session.ws.send(b"-ERR 'Stale Connection'\r\n")
            await session.close()
            return
        session.state["pinged"] = time.monotonic()
        session.outstanding_pings += 1
        await session.ws.send(b"PING\r\n")

    # --- SignalR JSON hub protocol ---------------------------------------------------------------

    async def _signalr(self, session: Session) -> None:
        handshaken = False
        async for text in self._messages(session):
            for record in (r for r in text.split(RS) if r):
                message = json.loads(record)
                if not handshaken:
                    if message != {"protocol": "json", "version": 1}:
                        await session.send(compact({"error": "unsupported protocol"}) + RS)
                        await session.close()
                        return
                    handshaken = True
                    await session.send("{}" + RS)
                    continue
                kind = message.get("type")
                if kind == 7:
                    await session.close()
                    return
                if kind == 1:
                    await self._signalr_invocation(session, message)

    async def _signalr_invocation(self, session: Session, message: dict[str, Any]) -> None:
        target, arguments, invocation = message.get("target"), message.get("arguments", []), message.get("invocationId")
        if target == "JoinGroup":
            self.subscribe(session, arguments[0])
        elif target == "SendToGroup":
            record = compact({"type": 1, "target": "ReceiveMessage", "arguments": [arguments[1]]}) + RS
            for member in list(self.rooms[arguments[0]]):
                await member.send(record)
        if invocation is not None:
            await session.send(compact({"type": 3, "invocationId": invocation, "result": None}) + RS)
        if target == "JoinGroup":
            await self.after_subscribe(session)

    async def _signalr_tick(self, session: Session) -> None:
        if self._quiet_for(session) > self.timeout_s:
            await session.send(compact({"type": 7, "error": "Server timeout elapsed"}) + RS)
            await session.close()
        elif time.monotonic() - session.state.get("pinged", 0) >= self.ping_s:
            session.state["pinged"] = time.monotonic()
            await session.send(compact({"type": 6}) + RS)

    # --- Centrifugo ------------------------------------------------------------------------------

    async def _centrifugo(self, session: Session) -> None:
        async for text in self._messages(session):
            for line in (part for part in text.split("\n") if part.strip()):
                command = json.loads(line)
                if command == {}:
                    session.outstanding_pings = 0
                    continue
                replies = await self._centrifugo_command(session, command)
                if replies:
                    await session.send("\n".join(replies))
                if "subscribe" in command:
                    await self.after_subscribe(session)

    async def _centrifugo_command(self, session: Session, command: dict[str, Any]) -> list[str]:
        command_id = command.get("id")
        if "connect" in command:
            session.state["connected"] = True
            result = {"client": f"client-{next(_ids)}", "version": "0.0.0", "ping": int(self.ping_s), "pong": True}
            return [compact({"id": command_id, "connect": result})]
        if not session.state.get("connected"):
            await session.close(3501, "bad request")
            return []
        if "subscribe" in command:
            self.subscribe(session, command["subscribe"]["channel"])
            return [compact({"id": command_id, "subscribe": {}})]
        if "unsubscribe" in command:
            self.unsubscribe(session, command["unsubscribe"]["channel"])
            return [compact({"id": command_id, "unsubscribe": {}})]
        if "publish" in command:
            channel, data = command["publish"]["channel"], command["publish"].get("data")
            push = compact({"push": {"channel": channel, "pub": {"data": data}}})
            for member in list(self.rooms[channel]):
                if member is not session:
                    await member.send(push)
            reply = [compact({"id": command_id, "publish": {}})]
            return reply + ([push] if session in self.rooms[channel] else [])  # both in one frame
        return [compact({"id": command_id, "error": {"code": 108, "message": "not available"}})]

    async def _centrifugo_tick(self, session: Session) -> None:
        pinged = session.state.get("pinged", 0)
        if session.outstanding_pings:
            if time.monotonic() - pinged > self.timeout_s:
                await session.close(3012, "no pong")
        elif session.state.get("connected") and time.monotonic() - pinged >= self.ping_s:
            session.state["pinged"] = time.monotonic()
            session.outstanding_pings += 1
            await session.send("{}")

    # --- Phoenix Channels (V2 JSON) --------------------------------------------------------------

    async def _phoenix(self, session: Session) -> None:
        session.state["heartbeat_at"] = time.monotonic()
        async for text in self._messages(session):
            join_ref, ref, topic, event, payload = json.loads(text)
            if topic == "phoenix" and event == "heartbeat":
                session.state["heartbeat_at"] = time.monotonic()
                await session.send(compact([None, ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}]))
            elif event == "phx_join":
                self.subscribe(session, topic, join_ref)
                await session.send(compact([join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}]))
                await self.after_subscribe(session)
            elif event == "phx_leave":
                self.unsubscribe(session, topic)
                await session.send(compact([join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}]))
            elif topic in session.topics:
                broadcast = compact([None, None, topic, event, payload])
                for member in list(self.rooms[topic]):
                    await member.send(broadcast)
            else:
                reply = {"status": "error", "response": {"reason": "unmatched topic"}}
                await session.send(compact([join_ref, ref, topic, "phx_reply", reply]))

    async def _phoenix_tick(self, session: Session) -> None:
        if time.monotonic() - session.state.get("heartbeat_at", time.monotonic()) > self.timeout_s:
            await session.close(1000, "heartbeat timeout")

    # --- Action Cable ----------------------------------------------------------------------------

    async def _actioncable(self, session: Session) -> None:
        await session.send(compact({"type": "welcome"}))
        async for text in self._messages(session):
            command = json.loads(text)
            identifier = command.get("identifier", "")
            if command.get("command") == "subscribe":
                self.subscribe(session, identifier)
                await session.send(compact({"identifier": identifier, "type": "confirm_subscription"}))
                await self.after_subscribe(session)
            elif command.get("command") == "unsubscribe":
                self.unsubscribe(session, identifier)
            elif command.get("command") == "message" and identifier in session.topics:
                data = json.loads(command.get("data", "{}"))
                if data.get("action") == "speak":
                    broadcast = compact({"identifier": identifier, "message": {"body": data.get("body")}})
                    for member in list(self.rooms[identifier]):
                        await member.send(broadcast)

    async def _actioncable_tick(self, session: Session) -> None:
        if time.monotonic() - session.state.get("pinged", 0) >= self.ping_s:
            session.state["pinged"] = time.monotonic()
            await session.send(compact({"type": "ping", "message": int(time.time())}))

    # --- Pusher Channels protocol 7 --------------------------------------------------------------

    async def _pusher(self, session: Session) -> None:
        key = session.ws.request.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1] if session.ws.request else ""
        socket_id = f"{next(_ids)}.{next(_ids) * 7919}"
        session.state.update(key=key, socket_id=socket_id)
        established = {"socket_id": socket_id, "activity_timeout": int(self.ping_s)}
        await session.send(compact({"event": "pusher:connection_established", "data": compact(established)}))
        async for text in self._messages(session):
            message = json.loads(text)
            event, data = message.get("event"), message.get("data") or {}
            if isinstance(data, str):
                data = json.loads(data or "{}")
            session.outstanding_pings = 0  # any message will do as a sign of life
            if event == "pusher:ping":
                if NO_PONG not in self.faults:
                    await session.send(compact({"event": "pusher:pong", "data": "{}"}))
            elif event == "pusher:subscribe":
                await self._pusher_subscribe(session, data)
            elif event == "pusher:unsubscribe":
                self.unsubscribe(session, data.get("channel", ""))
            elif isinstance(event, str) and event.startswith("client-"):
                channel = message.get("channel", "")
                if channel in session.topics and channel.startswith(("private-", "presence-")):
                    relay = compact({"event": event, "channel": channel, "data": compact(data)})
                    for member in list(self.rooms[channel]):
                        if member is not session:
                            await member.send(relay)

    async def _pusher_subscribe(self, session: Session, data: dict[str, Any]) -> None:
        channel = data.get("channel", "")
        if channel.startswith(("private-", "presence-")):
            signed = f"{session.state['socket_id']}:{channel}".encode()
            signature = hmac.new((self.secret or "").encode(), signed, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(str(data.get("auth", "")), f"{session.state['key']}:{signature}"):
                error = {"type": "AuthError", "error": "Invalid signature", "status": 401}
                await session.send(compact({"event": "pusher:subscription_error", "channel": channel, "data": error}))
                return
        self.subscribe(session, channel)
        await session.send(
            compact({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
        )
        await self.after_subscribe(session)

    async def _pusher_tick(self, session: Session) -> None:
        now = time.monotonic()
        if session.outstanding_pings and now - session.state.get("pinged", now) > self.timeout_s:
            await session.close(4201, "Pong reply not received")
        elif not session.outstanding_pings and self._quiet_for(session) >= self.ping_s:
            session.state["pinged"] = now
            session.outstanding_pings += 1
            await session.send(compact({"event": "pusher:ping", "data": "{}"}))

    # --- HTTP ------------------------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """GET /metrics; everything else is a WebSocket handshake."""
        if request.path == METRICS_PATH:
            body = self.metrics.exposition()
            headers = Headers([("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))])
            return Response(HTTPStatus.OK.value, "OK", headers, body)
        return None


def _choose_subprotocol(protocol: str) -> Callable[[ServerConnection, Sequence[str]], str | None]:
    wanted = SUBPROTOCOLS.get(protocol)

    def select(connection: ServerConnection, offered: Sequence[str]) -> str | None:
        return wanted if wanted in offered else None

    return select


async def serve_forever(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = TextProtocolServer(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sock = bind(args.host, args.port)
    handler: Callable[[ServerConnection], Awaitable[None]] = server.handle
    async with serve(
        handler,
        sock=sock,
        process_request=server.process_request,
        select_subprotocol=_choose_subprotocol(args.protocol),
        ping_interval=None,  # the protocols' own pings only
        close_timeout=1,
    ):
        announce(sock)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser("text_protocols", "Text protocols over WebSocket, from their specifications.", FAULTS)
    parser.add_argument("--protocol", required=True, choices=["stomp", "nats", "signalr", "centrifugo", "phoenix",
                                                            "actioncable", "pusher"])  # fmt: skip
    parser.add_argument("--ping-s", type=float, default=25.0, help="the server's ping (or activity) period")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="how long it waits for answers or heartbeats")
    asyncio.run(serve_forever(parse_args(parser, argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
