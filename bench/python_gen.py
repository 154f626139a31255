"""One Python load generator of the benchmark, in its own process; `bench/run.py` starts it.

Three clients, same cycle (connect + handshake, one echo, hold, clean close, pause), all in
gevent greenlets (Locust's monkey-patching, imported first), and a Socket.IO baseline:

- `plain`: the stock `websocket-client` loop, `create_connection()` and `close()`; the baseline.
- `session`: the pack's `WebSocketSession` in a bare loop: the pack's client without Locust.
- `pack`: the pack's `FlappingUser` inside a Locust `LocalRunner`, with everything the pack
  does beside it: request events and Locust's stats, the connection tracker, the resource
  monitor sampling the server every 0.5 s and the generator's self-check.
- `sio-python`: the python-socketio client (`socketio.Client`, WebSocket transport only), the
  Socket.IO part's baseline: per cycle connect (namespace included), one `call('chat', ...)`
  (an emit that waits for its acknowledgement), hold, `disconnect()`, pause. Its server is the
  benchmark's in socketio mode (`bench/echo_server.py --protocol socketio`, or the refserver);
  the pack's row for that part is `pack` with a `protocol: socketio` conversation file
  (`--conversation`).

Modes: `throughput` (zero hold and pause: cycles/s and CPU per cycle), `timing` (per-cycle
timestamps at a given hold and pause), `memory` (bytes per open connection), `sustained`
(full rate for a long time: errors and rate per interval). The result is one JSON line on
stdout. Every loop is bounded by `--seconds` (and a hard deadline).

    python -m bench.python_gen --client pack --mode throughput --url ws://127.0.0.1:PORT/ --users 48 --seconds 5
"""

import locust  # noqa: F401  isort: skip  (monkey-patches the standard library for gevent first)

import argparse
import gc
import itertools
import json
import os
import resource
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import gevent
import psutil
import websocket
from locust import events
from locust.env import Environment

from monitors.load_generator import sample_generator
from monitors.monitor import ResourceMonitor
from monitors.process_sampler import ProcessTreeSampler
from pack import plugin
from scenarios.client import WsClient
from scenarios.conversation import echo_conversation
from scenarios.disconnect import DisconnectMix
from scenarios.flapping_user import FlapContext, FlappingUser, use_context
from scenarios.protocols import load_conversation
from scenarios.schedule import FlapTiming
from scenarios.settings import ClientSettings, FlapSettings
from scenarios.ws_session import WebSocketSession, WsFailure

MESSAGE = "flap bench"
SIO_PAYLOAD = {"text": MESSAGE}  # what bench/conversations/socketio-ack.yaml emits
WARMUP_S = 1.5  # cycles starting before this are not counted
HARD_LIMIT_S = 900.0  # no mode runs longer than this, whatever it is asked


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


class Run:
    """What one generator run observes."""

    def __init__(self, record: bool) -> None:
        self.record = record  # keep per-cycle timestamps (timing mode)
        self.cycles: list[tuple[float, float, float, float, int]] = []  # start, connected, close start, closed, user
        self.completed = 0  # cycles completed
        self.errors: Counter[str] = Counter()  # failure message -> count (bare loops)
        self.error_counts = lambda: dict(self.errors)  # failures so far, wherever they are counted
        self.stop = False  # set when the run is over


# --- plain websocket-client and the pack's session, in bare greenlet loops -----------------


def _plain_cycle(url: str, hold_s: float) -> tuple[float, float, float, float]:
    start = time.perf_counter()
    ws = websocket.create_connection(url, timeout=5)
    connected = time.perf_counter()
    try:
        ws.send(MESSAGE)
        ws.recv()
        delay = connected + hold_s - time.perf_counter()
        gevent.sleep(delay if delay > 0 else 0)
        close_start = time.perf_counter()
        ws.close()
    finally:
        ws.shutdown()
    return start, connected, close_start, time.perf_counter()


_BARE_CLIENT = WsClient(ClientSettings(timeout_s=5.0))  # the pack's client factory and echo conversation


def _no_rows(name: str, started: float, length: int, failure: object) -> None:
    """The bare loop fires no Locust events."""


def _session_cycle(url: str, hold_s: float) -> tuple[float, float, float, float]:
    start = time.perf_counter()
    session = _BARE_CLIENT.session(url)
    session.connect()
    connected = time.perf_counter()
    try:
        _BARE_CLIENT.talk(session, _no_rows).run(_BARE_CLIENT.conversation.hold)
        delay = connected + hold_s - time.perf_counter()
        gevent.sleep(delay if delay > 0 else 0)
        close_start = time.perf_counter()
        session.close_clean()
    finally:
        session.abort()
    return start, connected, close_start, time.perf_counter()


def _sio_cycle(url: str, hold_s: float) -> tuple[float, float, float, float]:
    import socketio  # imported by run_loops before any greenlet starts

    start = time.perf_counter()
    # A client of its own per cycle, as a flapping client; no reconnection, no SIGINT handler
    # (greenlets are no place for one), every wait bounded.
    sio = socketio.Client(reconnection=False, handle_sigint=False, request_timeout=5)
    try:
        sio.connect(url, transports=["websocket"], wait_timeout=5)  # returns once the namespace is connected
        connected = time.perf_counter()
        answer = sio.call("chat", SIO_PAYLOAD, timeout=5)
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise RuntimeError("unexpected ack")
        delay = connected + hold_s - time.perf_counter()
        gevent.sleep(delay if delay > 0 else 0)
        close_start = time.perf_counter()
    finally:
        sio.disconnect()  # the namespace DISCONNECT, then the Engine.IO close; a no-op when not connected
    return start, connected, close_start, time.perf_counter()


_PAHO_IDS = itertools.count()  # paho-mqtt: a client id and topic of its own per cycle
PAHO_PAYLOAD = b"flap bench"  # what bench/conversations/mqtt-cycle.yaml publishes


def _paho_cycle(url: str, hold_s: float) -> tuple[float, float, float, float]:
    """paho-mqtt over WebSocket, driven by its own `loop()` in this greenlet: connect, subscribe, publish, delivery."""
    from paho.mqtt import client as paho

    start = time.perf_counter()
    parts = urlsplit(url)
    number = next(_PAHO_IDS)
    topic = f"bench/{number}"
    state = {"connected": False, "subscribed": False, "delivered": False}
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=f"flap-{number}", transport="websockets", protocol=paho.MQTTv311
    )
    client.ws_set_options(path=parts.path or "/")
    client.on_connect = lambda *args: state.update(connected=True)
    client.on_subscribe = lambda *args: state.update(subscribed=True)
    client.on_message = lambda *args: state.update(delivered=True)

    def until(flag: str) -> None:
        deadline = time.perf_counter() + 5.0
        while not state[flag]:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{flag} timed out")
            client.loop(timeout=0.05)

    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 80, keepalive=60)
        until("connected")
        connected = time.perf_counter()
        client.subscribe(topic, qos=0)
        until("subscribed")
        client.publish(topic, PAHO_PAYLOAD, qos=0)
        until("delivered")
        delay = connected + hold_s - time.perf_counter()
        gevent.sleep(delay if delay > 0 else 0)
        close_start = time.perf_counter()
        client.disconnect()  # DISCONNECT, then the socket closes
    finally:
        sock = client.socket()
        if sock is not None:
            sock.close()
    return start, connected, close_start, time.perf_counter()


def run_loops(client: str, url: str, users: int, hold_s: float, pause_s: float, run: Run) -> list[gevent.Greenlet]:
    """Start `users` greenlets looping the cycle, their starts spread over one cycle period."""
    cycles = {"plain": _plain_cycle, "session": _session_cycle, "sio-python": _sio_cycle, "paho": _paho_cycle}
    cycle = cycles[client]
    if client == "sio-python":
        # Imported here, once: greenlets importing it side by side would see a half-initialised
        # module (the import lock is per thread, and they share one). Only this client pays for it.
        import socketio  # noqa: F401

        url = url.replace("ws", "http", 1)  # python-socketio takes the server's HTTP origin
    if client == "paho":
        from paho.mqtt import client as _paho  # noqa: F401  (imported once, before the greenlets)
    period = hold_s + pause_s

    def loop(number: int) -> None:
        gevent.sleep(period * number / users)
        while not run.stop:
            try:
                stamps = cycle(url, hold_s)
            except Exception as error:  # counted; a real failure shows in the result
                if run.stop:  # killed mid-cycle by the end of the run (python-socketio's disconnect then fails)
                    return
                message = error.message if isinstance(error, WsFailure) else type(error).__name__
                run.errors[message] += 1
                gevent.sleep(pause_s)
                continue
            run.completed += 1
            if run.record:
                run.cycles.append((*stamps, number))
            gevent.sleep(pause_s)

    return [gevent.spawn(loop, number) for number in range(users)]


# --- the pack's user inside Locust ---------------------------------------------------------


def start_pack(args: argparse.Namespace, hold_s: float, pause_s: float, run: Run):
    """A Locust LocalRunner with `--users` flapping users, the resource monitor and the self-check."""
    url, users = args.url, args.users
    plugin.activate()  # as the pack's locustfile does before Locust spawns users (gevent settings)
    environment = Environment(events=events)

    class BenchUser(FlappingUser):
        host = url

        if args.no_events:  # to tell Locust's share of the bookkeeping from the pack's own

            def _report(self, name: str, started: float, length: int = 0, failure: WsFailure | None = None) -> None:
                pass

    class RecordingUser(BenchUser):
        """Also keeps each cycle's timestamps (timing mode only: it costs a little per event)."""

        def _report(self, name: str, started: float, length: int = 0, failure: WsFailure | None = None) -> None:
            super()._report(name, started, length, failure)
            if failure is None:
                now = time.perf_counter()
                open_cycle = self._bench_open
                if name == "connect":
                    self._bench_open = [started, now]
                elif name in ("close", "abrupt", "reset") and open_cycle:
                    run.cycles.append((open_cycle[0], open_cycle[1], started, now, self._number))

        def on_start(self) -> None:
            self._bench_open: list[float] = []  # this cycle's start and connected time
            super().on_start()

    environment.user_classes = [RecordingUser if run.record else BenchUser]
    timing = FlapTiming(connected_ms=hold_s * 1000, disconnected_ms=pause_s * 1000, cycles=0)
    conversation = load_conversation(args.conversation) if args.conversation else echo_conversation()
    settings = FlapSettings(
        timing=timing, disconnect=DisconnectMix.parse(args.disconnect), source_addresses=args.source_addresses
    )
    client = ClientSettings(timeout_s=5.0, conversation=conversation)
    context = use_context(environment, FlapContext(settings, client))
    runner = environment.create_local_runner()
    # Failures as Locust's stats counted them (the pack's users report nothing else).
    run.error_counts = lambda: {str(e.error): e.occurrences for e in runner.stats.errors.values()}
    monitor = None
    if args.server_pid is not None:
        sampler = ProcessTreeSampler.for_pid(args.server_pid, args.server_port)
        monitor = ResourceMonitor(
            [sampler], 0.5, phase_of=lambda: "flapping", cycles_of=lambda: context.tracker.total.cycles_completed
        )
        monitor.start()

    def self_check() -> None:
        while True:
            sample_generator()
            gevent.sleep(0.5)

    checker = gevent.spawn(self_check)
    period = hold_s + pause_s
    spawn_rate = users / period if period > 0 else float(users) * 10
    runner.start(users, spawn_rate=spawn_rate)

    def stop() -> None:
        runner.quit()
        checker.kill()
        if monitor is not None:
            monitor.stop()

    return context, stop


# --- modes ----------------------------------------------------------------------------------


def _count(client: str, run: Run, context: FlapContext | None) -> int:
    return context.tracker.total.cycles_completed if context is not None else run.completed


def mode_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Zero hold and pause: cycles per second and CPU seconds per 1,000 cycles, after a warm-up."""
    run = Run(record=False)
    context, stop = _start(args, run, 0.0, 0.0)
    gevent.sleep(WARMUP_S)
    cycles0, cpu0, wall0 = _count(args.client, run, context), time.process_time(), time.perf_counter()
    user0, system0 = resource.getrusage(resource.RUSAGE_SELF)[:2]
    gevent.sleep(args.seconds)
    cycles1, cpu1, wall1 = _count(args.client, run, context), time.process_time(), time.perf_counter()
    user1, system1 = resource.getrusage(resource.RUSAGE_SELF)[:2]
    stop()
    cycles = cycles1 - cycles0
    return {
        "cycles": cycles,
        "seconds": wall1 - wall0,
        "cycles_per_s": cycles / (wall1 - wall0),
        "cpu_s_per_1000": (cpu1 - cpu0) / cycles * 1000 if cycles else None,
        "user_s_per_1000": (user1 - user0) / cycles * 1000 if cycles else None,  # in the process itself
        "system_s_per_1000": (system1 - system0) / cycles * 1000 if cycles else None,  # in the kernel, for it
        "cpu_share": (cpu1 - cpu0) / (wall1 - wall0),
        "errors": run.error_counts(),
    }


def mode_timing(args: argparse.Namespace) -> dict[str, Any]:
    """Per-cycle timestamps (ms since the window opened) at the given hold and pause."""
    run = Run(record=True)
    hold_s, pause_s = args.hold_ms / 1000, args.pause_ms / 1000
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    _context, stop = _start(args, run, hold_s, pause_s)
    gevent.sleep(WARMUP_S + args.seconds)
    cpu = time.process_time() - cpu0
    stop()
    window = (t0 + WARMUP_S, t0 + WARMUP_S + args.seconds)
    cycles = [
        [*(round((stamp - t0) * 1000, 3) for stamp in stamps), user]
        for *stamps, user in run.cycles
        if window[0] <= stamps[0] < window[1]
    ]
    return {"cycles": cycles, "cpu_share": cpu / (time.perf_counter() - t0), "errors": run.error_counts()}


def mode_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Open `--connections` connections, hold them, and divide the RSS growth by their number."""
    run = Run(record=False)
    before = _rss()
    count = args.connections
    if args.client == "pack":
        plugin.activate()  # as the pack's locustfile does before Locust spawns users (gevent settings)
        environment = Environment(events=events)

        class HoldingUser(FlappingUser):
            host = args.url

        environment.user_classes = [HoldingUser]
        timing = FlapTiming(connected_ms=HARD_LIMIT_S * 1000, disconnected_ms=0, cycles=1)
        context = use_context(environment, FlapContext(FlapSettings(timing=timing), ClientSettings(timeout_s=10.0)))
        runner = environment.create_local_runner()
        runner.start(count, spawn_rate=2000)
        deadline = time.monotonic() + 60
        while context.tracker.total.open_connections < count and time.monotonic() < deadline:
            gevent.sleep(0.2)
        opened = context.tracker.total.open_connections
        gevent.sleep(0.5)
        after = _rss()
        runner.quit()
    else:
        held: list[Any] = []

        def open_one() -> None:
            try:
                if args.client == "plain":
                    ws = websocket.create_connection(args.url, timeout=10)
                    ws.send(MESSAGE)
                    ws.recv()
                else:
                    ws = _BARE_CLIENT.session(args.url, timeout_s=10.0)
                    ws.connect()
                    _BARE_CLIENT.talk(ws, _no_rows).run(_BARE_CLIENT.conversation.hold)
                held.append(ws)
                gevent.sleep(HARD_LIMIT_S)  # each connection has its greenlet, as a user would
            except Exception as error:
                run.errors[type(error).__name__] += 1

        greenlets = []
        for start in range(0, count, 100):  # 100 at a time: no thundering SYN herd
            greenlets += [gevent.spawn(open_one) for _ in range(min(100, count - start))]
            gevent.sleep(0.02)
        deadline = time.monotonic() + 60
        while len(held) + sum(run.errors.values()) < count and time.monotonic() < deadline:
            gevent.sleep(0.2)
        opened = len(held)
        gevent.sleep(0.5)
        after = _rss()
        gevent.killall(greenlets)
        for ws in held:
            ws.abort() if isinstance(ws, WebSocketSession) else ws.shutdown()
    return {
        "connections": opened,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_connection": (after - before) / opened if opened else None,
        "errors": run.error_counts(),
    }


def mode_sustained(args: argparse.Namespace) -> dict[str, Any]:
    """Full rate for `--seconds`: cycles and errors per 10 s interval, and in total."""
    run = Run(record=False)
    context, stop = _start(args, run, 0.0, 0.0)
    intervals = []
    started = time.perf_counter()
    last_cycles, last_errors = 0, 0
    while time.perf_counter() - started < args.seconds:
        gevent.sleep(min(10.0, args.seconds - (time.perf_counter() - started)))
        cycles = _count(args.client, run, context)
        errors = sum(run.error_counts().values())
        intervals.append({"t_s": round(time.perf_counter() - started, 1), "cycles": cycles - last_cycles})
        intervals[-1]["errors"] = errors - last_errors
        last_cycles, last_errors = cycles, errors
        print(json.dumps({"progress": intervals[-1]}), file=sys.stderr, flush=True)
    stop()
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "cycles": last_cycles,
        "cycles_per_s": last_cycles / elapsed,
        "errors": run.error_counts(),
        "error_count": sum(run.error_counts().values()),
        "intervals": intervals,
    }


def _start(args: argparse.Namespace, run: Run, hold_s: float, pause_s: float):
    if args.client == "pack":
        return start_pack(args, hold_s, pause_s, run)
    greenlets = run_loops(args.client, args.url, args.users, hold_s, pause_s, run)

    def stop() -> None:
        run.stop = True
        gevent.killall(greenlets, timeout=5)

    return None, stop


def main() -> None:
    parser = argparse.ArgumentParser(description="One Python load generator of the benchmark.")
    parser.add_argument("--client", choices=("plain", "session", "pack", "sio-python", "paho"), required=True)
    parser.add_argument("--mode", choices=("throughput", "timing", "memory", "sustained"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--hold-ms", type=float, default=100.0)
    parser.add_argument("--pause-ms", type=float, default=50.0)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--server-pid", type=int, default=None, help="pack: the monitor samples this process")
    parser.add_argument("--server-port", type=int, default=None)
    parser.add_argument("--source-addresses", type=int, default=1, help="pack: --flap-source-addresses")
    parser.add_argument("--disconnect", default="clean", help="pack: --flap-disconnect")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    parser.add_argument("--no-events", action="store_true", help="pack: fire no Locust request events (diagnostic)")
    parser.add_argument("--conversation", default=None, help="pack: --ws-conversation (default: the echo)")
    args = parser.parse_args()
    args.seconds = min(args.seconds, HARD_LIMIT_S)
    if args.client in ("sio-python", "paho") and args.mode == "memory":
        parser.error("--client sio-python has no memory mode")
    if args.cpu is not None:
        try:
            os.sched_setaffinity(0, {args.cpu})
        except OSError:
            pass
    gevent.spawn_later(HARD_LIMIT_S + 60, os._exit, 3)  # a hard stop, whatever happens
    # As `locust` does once the locustfile is loaded: the objects of every imported module
    # (Locust, Flask, ...) leave the collector's view, so a full collection does not stall
    # the event loop for tens of milliseconds. The same for every client, for a fair comparison.
    gc.collect()
    gc.freeze()
    modes = {"throughput": mode_throughput, "timing": mode_timing, "memory": mode_memory, "sustained": mode_sustained}
    result = modes[args.mode](args)
    print(json.dumps({"client": args.client, "mode": args.mode, "users": args.users, **result}), flush=True)
    os._exit(0)  # skip interpreter teardown with thousands of sockets and greenlets


if __name__ == "__main__":
    main()
