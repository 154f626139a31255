"""MQTT over WebSocket end to end: real Locust runs against real brokers on 127.0.0.1, and the bundled server.

aedes (Node.js, installed by `npm ci` from its lock file) and amqtt (PyPI, in a venv of its
own from pinned requirements) export the sessions they hold as `mqtt_sessions`. Healthy clean
sessions pass; persistent sessions under a new client id each cycle pile up and fail
agents_growth; a wrong password fails connects by name and is in no output; keepalive holds
longer than the broker's 1.5 x keepalive limit pass.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import amqtt_broker, mqtt_broker
from tests.servers.mqtt_broker import PASSWORD_ENV, USER_ENV
from tests.support.e2e_helpers import worker_processes
from tests.support.locust_process import ROOT, LocustRun
from tests.support.unavailable import unavailable

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "mqtt.yaml"
USER = "flapper"
PASSWORD = "mqtt-pw-7c1d9e"
BROKERS = {"aedes": ("mqtt_broker", mqtt_broker.broker_ready), "amqtt": ("amqtt_broker", amqtt_broker.broker_ready)}
# What each broker's CONNACK says to a wrong password.
WRONG_PASSWORD_REFUSALS = ("connection refused: bad user name or password", "connection refused: not authorized")


def example_with(*changes: tuple[str, str]) -> str:
    """examples/mqtt.yaml with each (old, new) change made; fails when the example no longer has `old`."""
    text = EXAMPLE.read_text()
    for old, new in changes:
        assert old in text, f"examples/mqtt.yaml no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Broker:
    """A started broker: its WebSocket URL and the options that judge its session count."""

    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.url = server.url  # ws://127.0.0.1:PORT/mqtt
        found = re.search(r"metrics port=(\d+)", server.stdout_text())
        metrics_url = f"http://127.0.0.1:{found.group(1)}/metrics" if found else server.metrics_url
        self.metrics = ["--server-metrics-url", metrics_url, "--agents-metric", "mqtt_sessions"]


@pytest.fixture(params=sorted(BROKERS))
def start_broker(request, start_app_server) -> Callable[..., Broker]:  # type: ignore[no-untyped-def]
    """Starts the parametrized broker (aedes or amqtt), installing it first; skips (fails under CI) without it."""
    name, ready = BROKERS[request.param]
    why_not = ready()
    if why_not is not None:
        unavailable(why_not)

    def start(env: dict[str, str] | None = None) -> Broker:
        return Broker(start_app_server(name, env=env))

    return start


def _failures(run: LocustRun) -> set[tuple[str, str]]:
    with open(run.out_dir / "run_failures.csv") as file:
        return {(row["Name"], row["Error"]) for row in csv.DictReader(file)}


def test_clean_sessions_pass_against_a_broker(start_broker, locust) -> None:
    """examples/mqtt.yaml: session, subscribe, QoS 1 publish and its delivery every cycle; sessions freed."""
    broker = start_broker()
    run = locust("--host", broker.url, "--ws-conversation", str(EXAMPLE), *broker.metrics)
    assert run.exit_code == 0, run.output[-3000:]
    for row in ("session", "subscribe", "publish", "delivered"):
        assert int(run.stats_row(row)["Request Count"]) == 20, row
        assert int(run.stats_row(row)["Failure Count"]) == 0, row
    assert run.check("agents_growth")["status"] == "pass"


def test_persistent_sessions_under_a_new_client_id_each_cycle_fail_agents_growth(
    start_broker, locust, tmp_path: Path
) -> None:
    """clean_start: false with a client id per cycle: every cycle leaves a session behind on the broker."""
    conversation = tmp_path / "persistent.yaml"
    conversation.write_text(
        example_with(
            ("client_id: flap-${worker}-${user}", "client_id: flap-${worker}-${user}-${cycle}"),
            ("clean_start: true", "clean_start: false"),
        )
    )
    broker = start_broker()
    run = locust("--host", broker.url, "--ws-conversation", str(conversation), *broker.metrics)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("agents_growth")["status"] == "fail"
    assert int(run.stats_row("delivered")["Failure Count"]) == 0


def test_a_wrong_password_fails_connects_by_name_and_shows_nowhere(start_broker, locust, tmp_path: Path) -> None:
    """The token is the CONNECT password (--ws-auth-in payload): refused by name; neither password is in any output."""
    conversation = tmp_path / "auth.yaml"
    conversation.write_text(example_with(("clean_start: true", f"clean_start: true\nusername: {USER}")))
    broker = start_broker(env={USER_ENV: USER, PASSWORD_ENV: PASSWORD})
    args = ["--host", broker.url, "--ws-conversation", str(conversation), "--ws-auth-in", "payload"]
    good = locust(*args, env={"LOCUST_WS_AUTH_TOKEN": PASSWORD})
    assert good.exit_code == 0, good.output[-3000:]

    wrong_password = "wrong-" + PASSWORD
    run = locust(*args, "--flap-cycles", "2", env={"LOCUST_WS_AUTH_TOKEN": wrong_password})
    assert run.exit_code == 3, run.output[-3000:]
    session_failures = {error for name, error in _failures(run) if name == "session"}
    assert session_failures and session_failures <= set(WRONG_PASSWORD_REFUSALS), session_failures
    assert run.check("connect_success_pct")["status"] == "fail"
    for output in (run, good):
        written = output.output + "".join(
            p.read_text(errors="replace") for p in output.out_dir.iterdir() if p.is_file()
        )
        assert PASSWORD not in written
        assert wrong_password not in written


def test_holds_longer_than_the_keepalive_stay_up_on_pingreq(start_broker, locust, tmp_path: Path) -> None:
    """keepalive_s 1 and 2.5 s holds: a broker cuts a client silent for 1.5 s; PINGREQs keep every session up."""
    conversation = tmp_path / "keepalive.yaml"
    conversation.write_text(example_with(("keepalive_s: 30", "keepalive_s: 1")))
    broker = start_broker()
    run = locust(
        "--host", broker.url, "--ws-conversation", str(conversation),
        "-u", "2", "--flap-cycles", "2", "--flap-connected-ms", "2500", "--max-recovery-ms", "1000",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    assert run.check("session_success_pct")["observed"] == 100


# --- the bundled server's MQTT mode (no --host) ---------------------------------------------------


def test_the_bundled_server_speaks_mqtt_and_passes_healthy(locust) -> None:
    """--ws-protocol mqtt with no --host: the bundled server in MQTT mode; every row passes, sessions freed."""
    run = locust("--ws-protocol", "mqtt", "--ws-conversation", str(EXAMPLE))
    assert run.exit_code == 0, run.output[-3000:]
    for row in ("session", "subscribe", "publish", "delivered"):
        assert int(run.stats_row(row)["Request Count"]) == 20, row
        assert int(run.stats_row(row)["Failure Count"]) == 0, row
    assert run.check("agents_growth")["status"] == "pass"


def test_the_bundled_mqtt_server_leaking_sessions_of_dropped_clients_fails_agents_growth(locust) -> None:
    """--ref-server-fault leak-agents with abrupt drops: sessions of vanished clients are never freed."""
    run = locust(
        "--ref-server-protocol", "mqtt", "--ws-conversation", str(EXAMPLE),
        "--ref-server-fault", "leak-agents", "--flap-disconnect", "abrupt",
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("agents_growth")["status"] == "fail"


def test_the_bundled_mqtt_server_refusing_connects_fails_connect_success(locust) -> None:
    """--ref-server-fault reject-503 in MQTT mode: refused handshakes fail connect_success_pct."""
    run = locust("--ws-protocol", "mqtt", "--ws-conversation", str(EXAMPLE), "--ref-server-fault", "reject-503")
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("connect_success_pct")["status"] == "fail"
    assert ("connect", "handshake rejected: HTTP 503") in _failures(run)


def test_the_bundled_mqtt_server_keeps_sessions_alive_over_long_holds(locust, tmp_path: Path) -> None:
    """keepalive_s 1 and 2.5 s holds: the bundled server cuts clients silent for 1.5 s; PINGREQs keep them."""
    conversation = tmp_path / "keepalive.yaml"
    conversation.write_text(example_with(("keepalive_s: 30", "keepalive_s: 1")))
    run = locust(
        "--ws-protocol", "mqtt", "--ws-conversation", str(conversation),
        "-u", "2", "--flap-cycles", "2", "--flap-connected-ms", "2500", "--max-recovery-ms", "1000",
    )  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    assert run.check("session_success_pct")["observed"] == 100


def test_a_missing_pingresp_fails_the_hold(locust, tmp_path: Path) -> None:
    """--ref-server-fault ignore-pingreq, keepalive_s 1, 3.5 s holds: PINGREQ goes unanswered; holds fail by name."""
    conversation = tmp_path / "keepalive.yaml"
    conversation.write_text(example_with(("keepalive_s: 30", "keepalive_s: 1")))
    run = locust(
        "--ws-protocol", "mqtt", "--ws-conversation", str(conversation), "--ref-server-fault", "ignore-pingreq",
        "-u", "2", "--flap-cycles", "2", "--flap-connected-ms", "3500", "--max-recovery-ms", "1000",
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    assert ("hold", "no PINGRESP within the keepalive") in _failures(run)
    assert run.check("session_success_pct")["status"] == "fail"


def test_mqtt_5_sessions_pass_against_the_bundled_server(locust, tmp_path: Path) -> None:
    """version: 5 (session expiry 5 s by default): the same cycle passes, rows and all."""
    conversation = tmp_path / "v5.yaml"
    conversation.write_text(example_with(("version: 3.1.1", "version: 5")))
    run = locust("--ws-protocol", "mqtt", "--ws-conversation", str(conversation), "--flap-cycles", "2")
    assert run.exit_code == 0, run.output[-3000:]
    assert int(run.stats_row("delivered")["Failure Count"]) == 0


# --- wills: what a drop without DISCONNECT tells the broker ------------------------------------

WILL_TOPICS = "flap/will/#"
WATCH_DEADLINE_S = 10.0  # every socket operation of the watcher


class WillWatcher:
    """A subscriber to the wills' topics on its own connection (the pack's codec, websocket-client)."""

    def __init__(self, url: str) -> None:
        import gevent
        import websocket

        from scenarios.protocols.mqtt import SUBPROTOCOL, Connect, MqttSession

        self.session = MqttSession(Connect("will-watcher", keepalive_s=0))  # the codec's client state
        self.ws = websocket.create_connection(url, timeout=WATCH_DEADLINE_S, subprotocols=[SUBPROTOCOL])
        self.ws.send_bytes(self.session.open(time.monotonic()))
        self.topics: list[str] = []  # the topics of the wills received, in order
        self.subscribed = False  # SUBACK came
        self.reader = gevent.spawn(self._read)  # a greenlet: the test process runs under gevent
        _, data = self.session.subscribe([(WILL_TOPICS, 0)], time.monotonic())
        deadline = time.monotonic() + WATCH_DEADLINE_S
        while not self.subscribed and time.monotonic() < deadline:
            gevent.sleep(0.05)
            if self.session.connected and not self.subscribed and data:
                self.ws.send_bytes(data)
                data = b""
        assert self.subscribed, "the watcher's subscription was not acknowledged"

    def _read(self) -> None:
        from websocket import WebSocketTimeoutException

        from scenarios.protocols.mqtt import Publish, Suback

        while True:
            try:
                frame = self.ws.recv()
            except WebSocketTimeoutException:
                continue
            except Exception:  # closed at the end of the test
                return
            _replies, packets = self.session.receive(frame, time.monotonic())
            for packet in packets:
                if isinstance(packet, Suback):
                    self.subscribed = True
                elif isinstance(packet, Publish):
                    self.topics.append(packet.topic)

    def close(self) -> None:
        self.reader.kill(block=False)
        self.ws.close(timeout=1)


@pytest.mark.parametrize(("style", "wills_expected"), [("abrupt", True), ("clean", False)])
def test_a_drop_without_disconnect_fires_the_will_and_a_clean_disconnect_does_not(
    start_app_server, locust, tmp_path: Path, style: str, wills_expected: bool
) -> None:
    """aedes publishes a client's will when its connection ends without DISCONNECT, never after a clean one."""
    why_not = mqtt_broker.broker_ready()
    if why_not is not None:
        unavailable(why_not)
    broker = Broker(start_app_server("mqtt_broker"))
    conversation = tmp_path / "will.yaml"
    conversation.write_text(
        example_with(("keepalive_s: 30", "keepalive_s: 30\nwill: {topic: 'flap/will/${user}', payload: gone}"))
    )
    watcher = WillWatcher(broker.url)
    try:
        run = locust(
            "--host", broker.url, "--ws-conversation", str(conversation), "-u", "2", "--flap-cycles", "3",
            "--flap-disconnect", style,
        )  # fmt: skip
        assert run.exit_code == 0, run.output[-3000:]
        time.sleep(1.0)  # the broker notices the last drops and publishes their wills
    finally:
        watcher.close()
    if wills_expected:
        assert len(watcher.topics) >= 2 * 3 - 2, (
            watcher.topics
        )  # 6 abrupt drops; the broker may not see the last ones yet
        assert set(watcher.topics) <= {"flap/will/0", "flap/will/1"}, watcher.topics
    else:
        assert watcher.topics == [], watcher.topics


def test_two_workers_users_each_keep_a_client_id_of_their_own(start_broker, locust) -> None:
    """--processes 2, two users a worker: no user takes over another's session (each connect lasts), PASS."""
    broker = start_broker()
    run = locust(*worker_processes(2), "--host", broker.url, "--ws-conversation", str(EXAMPLE), "-u", "4", "-r", "4")
    assert run.exit_code == 0, run.output[-3000:]
    for row in ("session", "delivered"):
        assert run.stats_row(row)["Failure Count"] == "0", row


def test_a_client_id_of_user_alone_is_refused_before_any_load_across_workers(locust, tmp_path: Path) -> None:
    """`client_id: flap-${user}` with --processes 2: both workers' user 0 would be one client: exit 2, one line."""
    conversation = tmp_path / "shared-ids.yaml"
    conversation.write_text(example_with(("client_id: flap-${worker}-${user}", "client_id: flap-${user}")))
    run = locust(*worker_processes(2), "--host", "ws://127.0.0.1:9/mqtt", "--ws-conversation", str(conversation))
    assert run.exit_code == 2, run.output[-3000:]
    assert "client_id: names ${user} without ${worker}" in run.output
    assert "Traceback" not in run.output
