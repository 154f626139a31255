"""Someone else who publishes: numbered QoS 1 messages to each user's MQTT topic, from a thread of the test.

The pack's users are subscribers; a broker's persistent sessions are judged by whether what
was published while a user was away reaches it when it comes back. `NumberedPublisher`
connects to the broker over WebSocket with the pack's own MQTT codec and, every
`interval_s`, publishes `{"seq": n}` (n = 1, 2, ... per topic) to `flap/<user>` for each
user, at QoS 1, reading the broker's PUBACKs as they come. Bounded: it stops when asked,
or after `max_s`.
"""

from __future__ import annotations

import json
import threading
import time

import websocket

from scenarios.protocols.mqtt import SUBPROTOCOL, Connack, Connect, MqttSession

DEADLINE_S = 10.0  # the connect and the CONNACK


class NumberedPublisher:
    """A thread publishing numbered messages to `flap/0` .. `flap/<users - 1>` until stopped."""

    def __init__(self, url: str, users: int, interval_s: float = 0.02, max_s: float = 120.0) -> None:
        self.url = url  # the broker's WebSocket URL
        self.users = users  # topics flap/0 .. flap/<users - 1>
        self.interval_s = interval_s  # between two rounds of publishes
        self.max_s = max_s  # the thread stops by itself after this long
        self.published = 0  # messages published so far
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._ready = threading.Event()
        self.error: BaseException | None = None  # what ended the thread early, if anything

    def __enter__(self) -> NumberedPublisher:
        self._thread.start()
        if not self._ready.wait(DEADLINE_S):
            raise AssertionError(f"the publisher did not connect: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE_S)

    def _run(self) -> None:
        session = MqttSession(Connect("flap-publisher", keepalive_s=0))
        try:
            ws = websocket.create_connection(self.url, timeout=DEADLINE_S, subprotocols=[SUBPROTOCOL])
        except BaseException as error:
            self.error = error
            return
        try:
            ws.send_bytes(session.open(time.monotonic()))
            while not session.connected:
                self._drain(ws, session, DEADLINE_S)
            self._ready.set()
            numbers = [0] * self.users
            ends_at = time.monotonic() + self.max_s
            next_round = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < ends_at:
                for user in range(self.users):
                    numbers[user] += 1
                    payload = json.dumps({"seq": numbers[user]}).encode()
                    _, data = session.publish(f"flap/{user}", payload, time.monotonic(), qos=1)
                    ws.send_bytes(data)
                    self.published += 1
                next_round += self.interval_s
                while (wait := next_round - time.monotonic()) > 0:
                    self._drain(ws, session, wait)
        except BaseException as error:
            self.error = error
        finally:
            ws.close()

    @staticmethod
    def _drain(ws: websocket.WebSocket, session: MqttSession, wait_s: float) -> None:
        """Read what the broker sent within `wait_s` (PUBACKs, the CONNACK), answering what needs it."""
        ws.settimeout(max(wait_s, 0.001))
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            return
        if isinstance(frame, bytes):
            replies, packets = session.receive(frame, time.monotonic())
            for reply in replies:
                ws.send_bytes(reply)
            if any(isinstance(packet, Connack) and packet.return_code for packet in packets):
                raise ConnectionError("the broker refused the publisher")
