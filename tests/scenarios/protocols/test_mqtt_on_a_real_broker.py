"""The MQTT codec against a real broker: aedes (MQTT 3.1.1) over WebSocket on loopback, through websocket-client.

Every byte goes through `scenarios.protocols.mqtt`: CONNECT/CONNACK, SUBSCRIBE/SUBACK, a
QoS 1 PUBLISH to the client's own subscription (PUBACK both ways), PINGREQ/PINGRESP on the
session's keepalive, DISCONNECT; and the broker's refusals read by name. Skipped, saying
why, where Node.js or npm is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import websocket

from childproc import ready
from childproc.ready import ReadyProcess
from scenarios.protocols.mqtt import (
    MQTT_5,
    SUBPROTOCOL,
    Connack,
    Connect,
    MqttSession,
    Packet,
    Pingresp,
    Puback,
    Publish,
    Suback,
)
from tests.servers import READY_LINE as APP_SERVER_READY
from tests.servers.mqtt_broker import PASSWORD_ENV, USER_ENV, broker_ready
from tests.support.unavailable import unavailable

USER = "flapper"
PASSWORD = "pw-mqtt-5e1f"
DEADLINE_S = 10.0  # every socket operation and every wait for a packet


class BrokerStartError(RuntimeError):
    """The broker exited or stayed silent instead of printing its readiness line."""


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """A running aedes broker with credential checks; its WebSocket URL."""
    why_not = broker_ready()
    if why_not is not None:
        unavailable(why_not)
    with ready.start_ready_process(
        "tests.servers.mqtt_broker",
        [],
        ready_line=APP_SERVER_READY,
        host="127.0.0.1",
        wrap=ReadyProcess,
        error=BrokerStartError,
        env={USER_ENV: USER, PASSWORD_ENV: PASSWORD},
        timeout_s=DEADLINE_S,
    ) as broker:
        yield f"ws://{broker.netloc}/mqtt"


def _open(url: str, session: MqttSession) -> websocket.WebSocket:
    """Connect with subprotocol mqtt and send the session's CONNECT as a binary frame."""
    ws = websocket.create_connection(url, timeout=DEADLINE_S, subprotocols=[SUBPROTOCOL])
    assert ws.getsubprotocol() == SUBPROTOCOL
    ws.send_bytes(session.open(time.monotonic()))
    return ws


def _read_until(ws: websocket.WebSocket, session: MqttSession, wanted: Callable[[Packet], bool]) -> list[Packet]:
    """Feed binary frames to the session (sending its replies) until a packet is `wanted`; all packets read."""
    seen: list[Packet] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        frame = ws.recv()
        assert isinstance(frame, bytes), "MQTT over WebSocket is binary frames"
        replies, packets = session.receive(frame, time.monotonic())
        for reply in replies:
            ws.send_bytes(reply)
        seen.extend(packets)
        if any(wanted(packet) for packet in packets) or session.failure(time.monotonic()):
            return seen
    raise AssertionError("no wanted packet before the deadline")


def test_a_session_connects_subscribes_publishes_to_itself_pings_and_disconnects(broker_url: str) -> None:
    """The full client life on aedes through the codec; the broker ends the connection after DISCONNECT."""
    session = MqttSession(Connect("flap-1", keepalive_s=1, username=USER, password=PASSWORD.encode()))
    ws = _open(broker_url, session)
    try:
        (connack,) = _read_until(ws, session, lambda packet: isinstance(packet, Connack))
        assert connack == Connack(False, 0) and session.connected

        subscribe_id, data = session.subscribe([("flap/+/echo", 1)], time.monotonic())
        ws.send_bytes(data)
        (suback,) = _read_until(ws, session, lambda packet: isinstance(packet, Suback))
        assert suback == Suback(subscribe_id, (1,)) and not session.awaiting_suback

        # QoS 1 to our own subscription: the broker PUBACKs ours and delivers it with an id of its own,
        # which the session PUBACKs back.
        publish_id, data = session.publish("flap/u1/echo", b"\x00hello\xff", time.monotonic(), qos=1)
        ws.send_bytes(data)
        packets = _read_until(ws, session, lambda packet: isinstance(packet, Publish))
        if not any(isinstance(packet, Puback) for packet in packets):
            packets += _read_until(ws, session, lambda packet: isinstance(packet, Puback))
        assert Puback(publish_id or 0) in packets and not session.awaiting_puback
        (delivered,) = [packet for packet in packets if isinstance(packet, Publish)]
        assert (delivered.topic, delivered.payload, delivered.qos) == ("flap/u1/echo", b"\x00hello\xff", 1)
        # QoS 0 comes back as QoS 0, needing nothing back.
        ws.send_bytes(session.publish("flap/u2/echo", b"q0", time.monotonic())[1])
        (echoed,) = _read_until(ws, session, lambda packet: isinstance(packet, Publish))
        assert isinstance(echoed, Publish) and (echoed.topic, echoed.qos) == ("flap/u2/echo", 0)

        # Keepalive 1 s: once it passed without sending, the session says to PINGREQ; the broker answers.
        started_s = time.monotonic()
        wake_s = session.next_check_s()
        assert wake_s is not None
        time.sleep(max(0.0, wake_s - time.monotonic()))
        (pingreq,) = session.due(time.monotonic())
        ws.send_bytes(pingreq)
        (pingresp,) = _read_until(ws, session, lambda packet: isinstance(packet, Pingresp))
        assert pingresp == Pingresp() and session.ping_sent_s is None
        assert time.monotonic() - started_s >= 0.5 and session.failure(time.monotonic()) is None

        ws.send_bytes(session.close(time.monotonic()))
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            ws.recv()  # the broker closes the connection after a DISCONNECT
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("connect", "refusal"),
    [
        (Connect("flap-2", username=USER, password=b"wrong"), "connection refused: bad user name or password"),
        (Connect("flap-3", level=MQTT_5, username=USER), "connection refused: unacceptable protocol version"),
    ],
)
def test_the_brokers_refusals_read_by_name(broker_url: str, connect: Connect, refusal: str) -> None:
    """A wrong password and a 5.0 CONNECT to a 3.1.1 broker fail the session with the refusal's words."""
    session = MqttSession(connect)
    ws = _open(broker_url, session)
    try:
        _read_until(ws, session, lambda packet: isinstance(packet, Connack))
        assert session.failure(time.monotonic()) == refusal and not session.connected
    finally:
        ws.close()
