"""The text-protocol examples end to end: real Locust runs against servers that speak each protocol.

Each example (examples/stomp.yaml, nats.yaml, signalr.yaml, centrifugo.yaml, phoenix.yaml,
actioncable.yaml, pusher_user.py) runs green against a server written from the protocol's
specification (tests/servers/text_protocols.py), whose pings and heartbeat checks are
shortened so that the holds outlast them; the same server closing after the subscribe fails
the run, and so does one that never answers the client's ping (NATS, Pusher). STOMP and NATS
also run against real brokers (RabbitMQ's web-stomp, nats-server), where this machine has
them. Bad files are refused before any load.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.locust_process import ROOT, LocustRun
from tests.support.unavailable import unavailable

EXAMPLES = ROOT / "examples"
PUSHER_SECRET = "pusher-s3cret-for-tests"
# Short runs: 2 users, 2 cycles, holds longer than every shortened ping and heartbeat timeout below.
RUN_ARGS = ["-u", "2", "-r", "2", "--flap-cycles", "2", "--flap-connected-ms", "1500", "--ws-timeout-s", "2"]


@dataclass(frozen=True)
class Example:
    """One example and how its test server is set up."""

    protocol: str  # tests/servers/text_protocols.py --protocol
    file: str  # in examples/
    path: str  # the protocol's usual endpoint
    server_args: tuple[str, ...]  # shortened pings and timeouts
    rows: tuple[str, ...]  # rows that must pass
    shorten: dict[str, str] = field(default_factory=dict)  # the example's periods, shortened to the server's
    env: dict[str, str] = field(default_factory=dict)  # for the Locust process and the server


EXAMPLES_UNDER_TEST = [
    Example(
        "stomp", "stomp.yaml", "/ws", (), ("connected", "subscribe", "message", "unsubscribe"),
        shorten={"heart-beat:10000,0": "heart-beat:300,0", "every_ms: 10000": "every_ms: 150"},
    ),
    Example("nats", "nats.yaml", "/", ("--ping-s", "0.3"), ("info", "connect", "message", "payload")),
    Example(
        "signalr", "signalr.yaml", "/hub", ("--ping-s", "0.3", "--timeout-s", "0.9"), ("handshake", "join", "message"),
    ),
    Example(
        "centrifugo", "centrifugo.yaml", "/connection/websocket", ("--ping-s", "0.3", "--timeout-s", "0.5"),
        ("connect", "subscribe", "message", "unsubscribe"),
    ),
    Example(
        "phoenix", "phoenix.yaml", "/socket/websocket?vsn=2.0.0", ("--timeout-s", "0.8"), ("join", "message", "leave"),
        shorten={"every_ms: 30000": "every_ms: 200"},
    ),
    Example("actioncable", "actioncable.yaml", "/cable", ("--ping-s", "0.3"), ("welcome", "subscribe", "message")),
    Example(
        "pusher", "pusher_user.py", "/app/app-key?protocol=7&client=flap&version=1",
        ("--ping-s", "0.3", "--timeout-s", "0.5"), ("connected", "subscribe", "ping"),
        env={"PUSHER_APP_KEY": "app-key", "PUSHER_APP_SECRET": PUSHER_SECRET, "APP_AUTH_TOKEN": PUSHER_SECRET},
    ),
]  # fmt: skip


def _example_args(example: Example, tmp_path: Path) -> list[str]:
    """The arguments that run the example: a locustfile (-f) or a conversation file, shortened as the server is."""
    source = EXAMPLES / example.file
    if source.suffix == ".py":
        return ["-f", str(source)]
    text = source.read_text()
    for long, short in example.shorten.items():
        assert long in text, long
        text = text.replace(long, short)
    conversation = tmp_path / example.file
    conversation.write_text(text)
    return ["--ws-conversation", str(conversation)]


def _failures(run: LocustRun) -> set[tuple[str, str]]:
    with open(run.out_dir / "run_failures.csv") as file:
        return {(row["Name"], row["Error"]) for row in csv.DictReader(file)}


def _assert_green(run: LocustRun, rows: tuple[str, ...]) -> None:
    assert run.exit_code == 0, run.output[-3000:]
    for row in rows:
        stats = run.stats_row(row)
        assert int(stats["Request Count"]) >= 1, row
        assert int(stats["Failure Count"]) == 0, row
    assert run.check("session_success_pct")["status"] == "pass"


@pytest.mark.parametrize("example", EXAMPLES_UNDER_TEST, ids=lambda example: example.protocol)
def test_each_example_passes_its_server_and_fails_one_that_closes_after_the_subscribe(
    example: Example, start_app_server, locust, tmp_path: Path
) -> None:
    """Healthy: every row passes through holds longer than the pings; closing after the subscribe fails sessions."""
    args = _example_args(example, tmp_path)
    server_env: dict[str, str | None] = {"APP_AUTH_TOKEN": example.env.get("APP_AUTH_TOKEN")}
    healthy = start_app_server("text_protocols", "--protocol", example.protocol, *example.server_args, env=server_env)
    host = f"ws://{healthy.netloc}{example.path}"
    run = locust("--host", host, *args, *RUN_ARGS, env=example.env)
    _assert_green(run, example.rows)
    assert PUSHER_SECRET not in run.output

    faulty = start_app_server(
        "text_protocols", "--protocol", example.protocol, *example.server_args, "--fault", "close-after-subscribe",
        env=server_env,
    )  # fmt: skip
    run = locust("--host", f"ws://{faulty.netloc}{example.path}", *args, *RUN_ARGS, env=example.env)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("session_success_pct")["status"] == "fail"


@pytest.mark.parametrize(
    ("protocol", "without"),
    [("centrifugo", "reply"), ("phoenix", "heartbeat")],
)
def test_without_its_reply_or_heartbeat_an_example_is_dropped_by_its_server(
    protocol: str, without: str, start_app_server, locust, tmp_path: Path
) -> None:
    """The example less its `reply:` rule (or `heartbeat:`) is dropped by the healthy server: the primitive matters."""
    example = next(e for e in EXAMPLES_UNDER_TEST if e.protocol == protocol)
    text = (EXAMPLES / example.file).read_text()
    text = re.sub(rf"(?ms)^{without}:.*?(?=^\w)", "", text)  # the top-level key and its block
    assert f"{without}:" not in text
    conversation = tmp_path / example.file
    conversation.write_text(text)
    server = start_app_server("text_protocols", "--protocol", protocol, *example.server_args)
    run = locust(
        "--host", f"ws://{server.netloc}{example.path}", "--ws-conversation", str(conversation), *RUN_ARGS,
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("session_success_pct")["status"] == "fail"
    assert any(error.startswith("closed by server") for _name, error in _failures(run)), _failures(run)


@pytest.mark.parametrize(("protocol", "failed_row"), [("nats", "connect"), ("pusher", "ping")])
def test_a_server_that_never_answers_the_clients_ping_fails_the_run(
    protocol: str, failed_row: str, start_app_server, locust, tmp_path: Path
) -> None:
    """NATS without PONG for the client's PING, Pusher without pusher:pong: the row that waits for it times out."""
    example = next(e for e in EXAMPLES_UNDER_TEST if e.protocol == protocol)
    env: dict[str, str | None] = {"APP_AUTH_TOKEN": example.env.get("APP_AUTH_TOKEN")}
    server = start_app_server(
        "text_protocols", "--protocol", protocol, *example.server_args, "--fault", "no-pong", env=env
    )
    run = locust(
        "--host", f"ws://{server.netloc}{example.path}", *_example_args(example, tmp_path), *RUN_ARGS,
        "--ws-timeout-s", "0.5", env=example.env,
    )  # fmt: skip
    assert run.exit_code == 3, run.output[-3000:]
    errors = {error for name, error in _failures(run) if name == failed_row}
    assert errors and all(error.startswith("expect timed out") for error in errors), _failures(run)


# --- real brokers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the broker exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the broker did not listen on {port} within {timeout_s:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Debian's nats-server with WebSocket on 127.0.0.1 and a 0.3 s ping interval; yields (port, its config)."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
    )
    if binary is None:
        unavailable("nats-server is not installed (Debian package nats-server; .ci/run installs it)")
    port = _free_port()
    config = tmp_path / "nats.conf"
    config.write_text(
        f'listen: "127.0.0.1:-1"\nping_interval: "300ms"\nping_max: 2\n'
        f'websocket {{\n  listen: "127.0.0.1:{port}"\n  no_tls: true\n}}\n'
    )
    process = subprocess.Popen([str(binary), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, 20)
        yield port, config
    finally:
        _stop(process)


def test_the_nats_example_passes_a_real_nats_server_that_pings_often(nats_server, locust, tmp_path: Path) -> None:
    """nats-server pinging every 0.3 s: the example's reply rule answers PING through 1.5 s holds; without it, stale."""
    port, _config = nats_server
    run = locust("--host", f"ws://127.0.0.1:{port}", "--ws-conversation", str(EXAMPLES / "nats.yaml"), *RUN_ARGS)
    _assert_green(run, ("info", "connect", "message", "payload"))

    without_reply = tmp_path / "nats-without-reply.yaml"
    without_reply.write_text(re.sub(r"(?ms)^reply:.*?(?=^\w)", "", (EXAMPLES / "nats.yaml").read_text()))
    run = locust("--host", f"ws://127.0.0.1:{port}", "--ws-conversation", str(without_reply), *RUN_ARGS)
    assert run.exit_code == 3, run.output[-3000:]
    assert run.check("session_success_pct")["status"] == "fail"


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


@pytest.fixture
def rabbitmq_web_stomp(tmp_path: Path) -> Iterator[int]:
    """Debian's RabbitMQ with its web-stomp plugin on 127.0.0.1 (a node of its own, in tmp_path); yields the port."""
    if not os.path.exists(RABBITMQ_SERVER):
        unavailable("rabbitmq-server is not installed (Debian package rabbitmq-server; .ci/run installs it)")
    port, amqp_port, dist_port = _free_port(), _free_port(), _free_port()
    config = tmp_path / "rabbitmq.conf"
    config.write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}\nweb_stomp.tcp.port = {port}\n"
        "web_stomp.tcp.ip = 127.0.0.1\nloopback_users = none\n"
    )
    plugins = tmp_path / "enabled_plugins"
    plugins.write_text("[rabbitmq_web_stomp].\n")
    node = f"flap{os.getpid()}x{port}@localhost"
    # Its own Erlang port mapper, on a port of its own, ended with the test (one started by
    # rabbitmq-server would stay behind as a daemon).
    epmd_port = _free_port()
    epmd = subprocess.Popen(
        [shutil.which("epmd") or "epmd", "-port", str(epmd_port), "-address", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        "RABBITMQ_MNESIA_BASE": str(tmp_path / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp_path / "log"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(tmp_path / "plugins"),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_PORT": str(epmd_port),
    }
    process = subprocess.Popen(
        [RABBITMQ_SERVER], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for_port(port, process, 90)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=5)
        _stop(epmd)


def test_the_stomp_example_passes_rabbitmq_web_stomp(rabbitmq_web_stomp, locust) -> None:
    """RabbitMQ's STOMP over WebSocket: connect, a receipted subscribe, a message per hold, a receipted unsubscribe."""
    host = f"ws://127.0.0.1:{rabbitmq_web_stomp}/ws"
    run = locust("--host", host, "--ws-conversation", str(EXAMPLES / "stomp.yaml"), *RUN_ARGS)
    _assert_green(run, ("connected", "subscribe", "message", "unsubscribe"))


# A stream over STOMP: 2 users flap cleanly 6 times, away 300 ms each time while the feed sends every 20 ms.
STREAM_RUN_ARGS = ["-u", "2", "-r", "2", "--flap-cycles", "6", "--flap-connected-ms", "300"]
STREAM_RUN_ARGS += ["--flap-disconnected-ms", "300", "--flap-disconnect", "clean", "--ws-timeout-s", "5"]


def test_the_stomp_stream_loses_nothing_on_a_rabbitmq_queue_and_fails_on_a_topic(
    rabbitmq_web_stomp, locust, tmp_path: Path
) -> None:
    """A durable /queue/ keeps what the feed sent while the user was away (0 lost); a /topic/ drops it (exit 3)."""
    host = f"ws://127.0.0.1:{rabbitmq_web_stomp}/ws"
    example = EXAMPLES / "stomp-stream.yaml"
    run = locust("--host", host, "--ws-conversation", str(example), *STREAM_RUN_ARGS)
    assert run.exit_code == 0, run.output[-3000:]
    lost = run.check("messages_lost")
    assert lost["status"] == "pass" and lost["observed"] == 0, lost
    counts = run.verdict["connections"]["continuity"]
    assert counts["stream_messages"] >= 2 * 6 * 5 and counts["messages_duplicated"] == 0, counts

    topic = tmp_path / "stomp-topic.yaml"
    text = example.read_text()
    assert text.count("destination:/queue/") == 2  # the subscription and the feed's destination
    topic.write_text(text.replace("destination:/queue/", "destination:/topic/"))
    run = locust("--host", host, "--ws-conversation", str(topic), *STREAM_RUN_ARGS)
    assert run.exit_code == 3, run.output[-3000:]
    lost = run.check("messages_lost")
    assert lost["status"] == "fail" and lost["observed"] > 0, lost
    words = r"[0-9,]+ messages lost in \d+ of 10 reconnects \([0-9,]+ stream messages received\) \(limit 0\)"
    assert re.fullmatch(words, lost["detail"]), lost["detail"]


# --- bad files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("hold:\n  - send: hi\n    every_ms: 5\n", "hold step 1: unknown key 'every_ms' for send"),
        ("open:\n  - expect: {type: welcome}\n    capture: {sid: type.id}\n", "open step 1: capture sid: type.id can"),
        ("heartbeat: {every_ms: 5, send: ping}\n", "heartbeat every_ms must be >= 10 (got 5)"),
    ],
    ids=["unknown-key", "capture-never-matches", "heartbeat-under-10ms"],
)
def test_a_bad_primitive_is_refused_before_any_load(text: str, line: str, locust, tmp_path: Path) -> None:
    """An unknown key, a capture path the expect rules out, a heartbeat under 10 ms: one line, exit 2, no load."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    run = locust("--ws-conversation", str(bad), timeout_s=60)
    assert run.exit_code == 2, run.output[-2000:]
    lines = [out for out in run.output.splitlines() if f"--ws-conversation: {bad}: " in out]
    assert len(lines) == 1 and f"--ws-conversation: {bad}: {line}" in lines[0], run.output[-2000:]
    assert "Traceback" not in run.output


def test_a_steady_users_session_keeps_its_heartbeat_between_exchanges(start_app_server, locust, tmp_path: Path) -> None:
    """Phoenix drops a socket silent for 0.8 s; a steady user idling 2.5 s between exchanges keeps it by heartbeats."""
    example = next(e for e in EXAMPLES_UNDER_TEST if e.protocol == "phoenix")
    server = start_app_server("text_protocols", "--protocol", "phoenix", *example.server_args)
    run = locust(
        "--host", f"ws://{server.netloc}{example.path}", *_example_args(example, tmp_path), *RUN_ARGS,
        "--steady-users", "1", "--steady-interval-ms", "2500",
    )  # fmt: skip
    _assert_green(run, example.rows)
    assert int(run.stats_row("steady-message")["Request Count"]) >= 2
    assert not [row for row in _failures(run) if row[0].startswith("steady-")], _failures(run)
