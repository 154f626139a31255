"""``--protocol mqtt``: a small MQTT 3.1.1 / 5.0 broker over WebSocket (subprotocol ``mqtt``, binary frames).

Written to the OASIS specifications with the pack's own codec (`scenarios.protocols.mqtt`,
its server side), so client and server share one. What it serves:

- CONNECT, answered by CONNACK. When ``REFSERVER_AUTH_TOKEN`` is set the password must be the
  token, else the CONNACK refuses (3.1.1: bad user name or password; 5.0: 0x86) and the
  connection closes. A client id already connected is taken over (the old connection closes).
- Every session is an agent (the `refserver_active_agents` gauge). A clean session (3.1.1
  clean session 1; 5.0 session expiry 0) ends with its connection and frees its agent; a
  persistent one stays, with its subscriptions, until its client id connects again (3.1.1
  keeps it as long as the server runs) or its 5.0 session expiry interval passes, as the
  specification says: a client id per connection with persistent sessions piles them up.
- SUBSCRIBE (QoS 0/1 granted as asked, 2 granted as 1), UNSUBSCRIBE; PUBLISH QoS 0/1 (QoS 1
  acknowledged with PUBACK) delivered to every matching subscription at the lesser QoS;
  PINGREQ answered with PINGRESP; DISCONNECT ends the connection (5.0: the will is dropped).
- A connection silent for 1.5 times its keepalive is closed (3.1.2.10), its will published.
- Fault ``--leak-agents-on-drop``: the session of a client that vanished (no DISCONNECT and no
  close frame) is never freed, clean or not: the classic broker session leak. Fault
  ``--ignore-pingreq``: PINGREQ gets no PINGRESP, so clients' keepalive checks fail.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from refserver.agents import Agent, AgentRegistry
from refserver.auth import same_secret
from refserver.faults import FaultModes
from scenarios.protocols.mqtt import (
    MQTT_5,
    PINGRESP_BYTES,
    SUBPROTOCOL,
    ClientPacketDecoder,
    Connect,
    Disconnect,
    Pingreq,
    ProtocolError,
    Puback,
    Publish,
    Subscribe,
    Unsubscribe,
    encode_connack,
    encode_suback,
    encode_unsuback,
    topic_matches,
)

MQTT_PROTOCOL = "mqtt"
SUBPROTOCOLS = [Subprotocol(SUBPROTOCOL)]  # what the websockets server accepts
BAD_CREDENTIALS = {4: 4, 5: 0x86}  # protocol level -> CONNACK code: bad user name or password
KEEPALIVE_GRACE = 1.5  # a client silent for this many keepalives is gone (3.1.2.10)
CONNECT_WAIT_S = 10.0  # how long a connection may take to send its CONNECT


@dataclass(eq=False)
class BrokerSession:
    """One client id's session: its agent, subscriptions, and the connection it is live on (if any)."""

    client_id: str
    agent: Agent
    level: int
    subscriptions: dict[str, int] = field(default_factory=dict)  # topic filter -> granted QoS
    live: MqttConnection | None = None  # the connection serving it now
    expiry: asyncio.TimerHandle | None = None  # 5.0: frees it when the session expiry interval passes


class MqttConnection:
    """One WebSocket connection's outbox: packets to it go through a queue, in order."""

    def __init__(self, connection: ServerConnection, level: int) -> None:
        self.connection = connection  # the WebSocket
        self.level = level  # the CONNECT's protocol level
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()  # None ends the pump
        self._next_packet_id = 0  # for QoS 1 deliveries

    def packet_id(self) -> int:
        """The next packet identifier for a QoS 1 delivery (1 .. 65535, wrapping)."""
        self._next_packet_id = self._next_packet_id % 65_535 + 1
        return self._next_packet_id


class MqttBroker:
    """The sessions and subscriptions of one server process; each connection is served by `serve`."""

    def __init__(self, agents: AgentRegistry, faults: FaultModes, auth_token: str | None) -> None:
        self.agents = agents  # every session is an agent
        self.faults = faults  # --leak-agents-on-drop
        self.auth_token = auth_token  # the password CONNECT must carry, if set
        self.sessions: dict[str, BrokerSession] = {}  # client id -> session, live or kept

    def publish(self, packet: Publish) -> None:
        """Deliver to every live session with a matching subscription, at the lesser QoS."""
        for session in self.sessions.values():
            target = session.live
            if target is None:
                continue
            granted = max(
                (qos for f, qos in session.subscriptions.items() if topic_matches(f, packet.topic)), default=-1
            )
            if granted < 0:
                continue
            qos = min(granted, packet.qos, 1)
            delivery = Publish(packet.topic, packet.payload, qos, False, target.packet_id() if qos else None)
            target.outbox.put_nowait(delivery.encode(target.level))

    def _free(self, session: BrokerSession) -> None:
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if session.expiry is not None:
            session.expiry.cancel()
        self.agents.close(session.agent.agent_id)

    def open_session(
        self, connect: Connect, target: MqttConnection, remote: str, path: str, attributes: dict[str, str]
    ) -> tuple[BrokerSession, bool]:
        """The session for a CONNECT (taken over, resumed or new) and whether it was present."""
        client_id = connect.client_id or f"auto-{secrets.token_hex(8)}"
        old = self.sessions.get(client_id)
        if old is not None:
            if old.live is not None:
                old.live.outbox.put_nowait(None)  # session taken over: the old connection ends
                old.live = None
            if old.expiry is not None:
                old.expiry.cancel()
                old.expiry = None
            if not connect.clean_start:
                old.live, old.level = target, connect.level
                return old, True
            self._free(old)
        agent = self.agents.open(remote, path, attributes)
        session = BrokerSession(client_id, agent, connect.level, live=target)
        self.sessions[client_id] = session
        return session, False

    def end_session(self, session: BrokerSession, connect: Connect, dropped: bool) -> None:
        """The connection ended: free a clean session, keep a persistent one (5.0: until its expiry)."""
        if session.live is None:
            return  # taken over by a newer connection, which owns it now
        session.live = None
        if dropped and self.faults.leak_agents_on_drop:
            self.sessions.pop(session.client_id, None)  # the bug: forgotten, never freed
            return
        if connect.level == MQTT_5:
            expiry_s = connect.session_expiry_s or 0
            if expiry_s == 0:
                self._free(session)
            elif expiry_s < 0xFFFF_FFFF:
                session.expiry = asyncio.get_running_loop().call_later(expiry_s, self._free, session)
        elif connect.clean_start:
            self._free(session)

    def authorized(self, connect: Connect) -> bool:
        """Whether the CONNECT's password is the token (always, without one)."""
        if self.auth_token is None:
            return True
        return connect.password is not None and same_secret(
            connect.password.decode("utf-8", "replace"), self.auth_token
        )


async def _pump(target: MqttConnection) -> None:
    """Send a connection's packets in order until None (then close it) or it closes."""
    try:
        while (data := await target.outbox.get()) is not None:
            await target.connection.send(data)
        await target.connection.close()
    except ConnectionClosed:
        pass


async def serve_mqtt(
    connection: ServerConnection,
    broker: MqttBroker,
    remote: str,
    attributes: dict[str, str],
) -> None:
    """Serve one MQTT-over-WebSocket connection until it ends; ConnectionClosed propagates to the caller."""
    decoder = ClientPacketDecoder()
    path = connection.request.path if connection.request is not None else "/"
    connect: Connect | None = None
    session: BrokerSession | None = None
    target: MqttConnection | None = None
    pump: asyncio.Task[None] | None = None
    goodbye = False  # DISCONNECT or a close frame: the client did not vanish
    try:
        timeout_s: float | None = CONNECT_WAIT_S
        while True:
            try:
                message = await asyncio.wait_for(connection.recv(), timeout_s)
            except TimeoutError:
                break  # no CONNECT in time, or silent past its keepalive: gone
            if isinstance(message, str):
                break  # MQTT over WebSocket is binary only (6.0)
            try:
                packets = decoder.feed(message)
            except ProtocolError:
                break
            for packet in packets:
                if isinstance(packet, Connect):
                    connect = packet
                    target = MqttConnection(connection, packet.level)
                    if not broker.authorized(packet):
                        await connection.send(encode_connack(False, BAD_CREDENTIALS[packet.level], packet.level))
                        await connection.close()
                        return
                    session, present = broker.open_session(packet, target, remote, path, attributes)
                    await connection.send(encode_connack(present, 0, packet.level))
                    pump = asyncio.create_task(_pump(target))
                    timeout_s = packet.keepalive_s * KEEPALIVE_GRACE if packet.keepalive_s else None
                    continue
                assert session is not None and target is not None
                if session.live is not target:
                    return  # taken over meanwhile
                if isinstance(packet, Publish):
                    session.agent.record_message(len(packet.payload))
                    if packet.qos == 1 and packet.packet_id is not None:
                        target.outbox.put_nowait(Puback(packet.packet_id).encode(target.level))
                    broker.publish(packet)
                elif isinstance(packet, Subscribe):
                    granted = [min(qos, 1) for _, qos in packet.filters]
                    session.subscriptions.update((f, q) for (f, _), q in zip(packet.filters, granted, strict=True))
                    target.outbox.put_nowait(encode_suback(packet.packet_id, granted, target.level))
                elif isinstance(packet, Unsubscribe):
                    for topic_filter in packet.filters:
                        session.subscriptions.pop(topic_filter, None)
                    target.outbox.put_nowait(encode_unsuback(packet.packet_id, len(packet.filters), target.level))
                elif isinstance(packet, Pingreq) and not broker.faults.ignore_pingreq:
                    target.outbox.put_nowait(PINGRESP_BYTES)
                elif isinstance(packet, Disconnect):
                    goodbye = True
                    target.outbox.put_nowait(None)
                    return
    except ConnectionClosed as exc:
        goodbye = goodbye or exc.rcvd is not None
        raise
    finally:
        if pump is not None and target is not None:
            if not goodbye:
                target.outbox.put_nowait(None)
            try:
                await asyncio.wait_for(pump, 2.0)
            except (TimeoutError, asyncio.CancelledError):
                pump.cancel()
        if session is not None and connect is not None:
            if not goodbye and connect.will is not None and session.live is target:
                broker.publish(Publish(connect.will.topic, connect.will.payload, min(connect.will.qos, 1)))
            if session.live is target:
                broker.end_session(session, connect, dropped=not goodbye)
