"""The generator benchmark: the pack's flapping user against the plain websocket-client loop and Node.js `ws`.

One command, every part side by side in one run, so the ratios come from the same machine
in the same minutes:

    .venv/bin/python bench/run.py [--quick] [--sustained-s 600]

Each generator runs in a process of its own pinned to core 0, the echo server on core 1
(where the machine has two cores). Parts, each bounded in time:

1. throughput: zero hold and pause, cycles/s and CPU-seconds per 1,000 cycles (one cycle =
   connect + handshake + one echo + clean close); medians of `--repeats` interleaved runs;
2. timing: hold 100 ms, pause 50 ms; hold-time and cycle-time error p50/p99 per user count;
3. memory: generator RSS per open connection;
4. monitor: one `ProcessTreeSampler` sample's CPU and the longest event-loop stall while the
   server holds 10,000 sockets (TIME_WAIT included);
5. sustained: the pack's users at full rate for `--sustained-s`, errors counted; and a short
   run where the client, not the server, keeps the TIME_WAIT entries, with one and with
   several source addresses;
6. socketio: zero hold, one Socket.IO cycle (connect + namespace + one emit whose
   acknowledgement is awaited + disconnect) by the pack's user in Locust
   (`bench/conversations/socketio-ack.yaml`), the Node.js `socket.io-client` loop and the
   python-socketio client in gevent; cycles/s and CPU-seconds per 1,000 cycles, medians of
   `--repeats` interleaved runs, and the server's CPU per 1,000 cycles beside them;
7. mqtt: zero hold, one MQTT cycle (connect + CONNACK + SUBSCRIBE/SUBACK + a QoS 0 PUBLISH
   and its delivery + DISCONNECT) by the pack's user in Locust (`bench/conversations/mqtt-cycle.yaml`),
   the Node.js `mqtt` (MQTT.js) loop (`bench/node/mqtt_client.js`) and paho-mqtt in gevent (the
   client under Locust's `MqttUser`); the same figures as part 6, against two brokers on the
   server core, one after the other:
   - Debian's mosquitto (C): about a fifth of a core at the clients' rates, so the clients, not
     the broker, set the rate. The targets are checked here.
   - aedes (`tests/servers/mqtt_broker`, Node.js), the broker of the tests. It costs about as
     much CPU per cycle as the pack, so under the pack it runs near a full core and sets the
     rate: kept for comparison. It runs with `--whole-packets`: aedes writes each packet in
     pieces (a fixed header, a length, a topic, a payload), and the `ws` stream would send each
     piece as a frame of its own, about 13 frames a cycle; brokers built for WebSocket
     (mosquitto, EMQX, HiveMQ) send one frame per packet, as the broker then does. Every
     client reads the same frames.

Prints a table and writes `bench/results/latest.json`. The server is `bench/echo_server.py`
(the bundled refserver saturates first; part 0 shows by how much); for part 6 it is the
same server in socketio mode, which answers as the bundled refserver in socketio mode does
(at a fraction of the refserver's CPU per cycle, so that no client's rate is the server's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "node"
JSON3_CONVERSATION = BENCH / "conversations" / "json3.yaml"  # the pack-json3 row: three JSON steps per cycle
SOCKETIO_CONVERSATION = BENCH / "conversations" / "socketio-ack.yaml"  # part 6: one emit with ack per cycle
MQTT_CONVERSATION = BENCH / "conversations" / "mqtt-cycle.yaml"  # part 7: subscribe, publish, delivery per cycle
AEDES_BROKER = ROOT / "tests" / "servers" / "mqtt_broker" / "broker.mjs"  # part 7's broker (npm ci installs it)
MOSQUITTO = "/usr/sbin/mosquitto"  # part 7's other broker: Debian's mosquitto (apt-get install mosquitto)
# mosquitto 2.0.11 starts only beside a plain MQTT listener, and its WebSocket listener (libwebsockets)
# cannot bind to one address: it listens on every IPv4 address; the generators connect to 127.0.0.1.
MOSQUITTO_CONFIG = """log_dest none
listener {tcp_port} 127.0.0.1
listener {ws_port}
socket_domain ipv4
protocol websockets
allow_anonymous true
"""
PYTHON = sys.executable
GENERATOR_CPU = 0  # the generator's core
SERVER_CPU = 1  # the server's core
HOLD_MS, PAUSE_MS = 100.0, 50.0  # the timing part's schedule

# What the issue asks of the pack; each is checked against this run's numbers.
TARGETS = {
    "cpu_vs_plain": 0.5,  # the pack's CPU per cycle / the plain websocket-client loop's, at most
    "cpu_vs_node": 1.2,  # the pack's CPU per cycle / Node.js ws's, at most
    "bookkeeping": 0.10,  # the pack's CPU per cycle over the same client without Locust and monitor, at most
    "hold_p99_ms_at_100": 5.0,  # hold-time error p99 at 100 users, ms, at most
    "cycle_p99_vs_plain_at_200": 0.5,  # cycle-time error p99 at 200 users / the plain loop's, at most
    "monitor_sample_cpu_ms": 2.0,  # one monitor sample at 10,000 server sockets, CPU ms, at most
    "monitor_stall_ms": 5.0,  # the longest event-loop stall while monitoring, ms, at most
    "bytes_per_connection": 10 * 1024,  # generator memory per open connection, at most
    "sio_cpu_vs_node": 1.0,  # Socket.IO cycle: the pack's CPU per cycle / Node.js socket.io-client's, at most
    "sio_cpu_vs_python": 0.3,  # Socket.IO cycle: the pack's CPU per cycle / python-socketio's, at most
    "mqtt_cpu_vs_node": 0.5,  # MQTT cycle: the pack's CPU per cycle / the Node.js mqtt loop's, at most
    "mqtt_cpu_vs_paho": 0.4,  # MQTT cycle: the pack's CPU per cycle / paho-mqtt's in gevent, at most
}


# Part 6's servers: --socketio-server -> (Server kind, what the results say).
SOCKETIO_SERVERS = {
    "bench": ("fast-socketio", "bench/echo_server.py --protocol socketio (the refserver's answers, one epoll thread)"),
    "refserver": ("refserver-socketio", "the bundled refserver, --protocol socketio (one asyncio process)"),
}


def log(message: str) -> None:
    """Progress on stderr, so stdout is the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Decided before this process pins itself (its children would inherit that one core).
CAN_PIN = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def can_pin() -> bool:
    """True when this machine lets us put the generator and the server on separate cores."""
    return CAN_PIN


def pinned(core: int):  # type: ignore[no-untyped-def]
    """A preexec_fn pinning the child to `core`, or None when pinning is not possible."""
    if not can_pin():
        return None
    return lambda: os.sched_setaffinity(0, {core})


def run_json(command: list[str], timeout_s: float, core: int = GENERATOR_CPU, env: dict | None = None) -> dict:
    """Run a generator to completion (bounded) and return the JSON of its last stdout line."""
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            preexec_fn=pinned(core),  # noqa: PLW1509  (no threads in this process)
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


# Part 7's brokers: the targets are checked against mosquitto (C), which costs a fraction of a
# client's CPU per cycle, so the clients, not the broker, set the rate; aedes (Node.js, the
# issue's reference broker) costs about as much per cycle as the pack: it saturates first.
MQTT_BROKERS = (
    ("mqtt", "mosquitto", "mosquitto 2.0.11 (Debian's package, C, one process)"),
    ("mqtt_aedes", "aedes", "aedes (tests/servers/mqtt_broker --whole-packets, Node.js, one process)"),
)


def mqtt_broker_missing(broker: str) -> str | None:
    """None when part 7 can start `broker` (installing aedes with npm ci if needed), else why not."""
    if broker == "mosquitto":
        return None if os.access(MOSQUITTO, os.X_OK) else f"{MOSQUITTO} not found (apt-get install mosquitto)"
    from tests.servers.mqtt_broker import broker_ready

    return broker_ready()


def free_ports(count: int) -> list[int]:
    """`count` different TCP ports free on every address a moment ago (for a server that cannot take port 0)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("", 0))  # mosquitto's WebSocket listener binds every address
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def accepts(port: int, process: subprocess.Popen[str], deadline: float) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:`port`; False when `process` ends or at the deadline."""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    """The benchmark's echo server (or the bundled refserver, or an MQTT broker), pinned to the server core."""

    def __init__(self, kind: str = "fast") -> None:
        self.port = 0  # where it listens
        self.config: tempfile.TemporaryDirectory | None = None  # mosquitto's configuration
        if kind == "mosquitto":
            self.config = tempfile.TemporaryDirectory(prefix="bench-mosquitto-")
            self.port, tcp_port = free_ports(2)
            config = Path(self.config.name) / "mosquitto.conf"
            config.write_text(MOSQUITTO_CONFIG.format(tcp_port=tcp_port, ws_port=self.port))
            command = [MOSQUITTO, "-c", str(config)]
        elif kind == "fast":
            command = [PYTHON, "-m", "bench.echo_server", "--port", "0"]
        elif kind == "fast-socketio":
            command = [PYTHON, "-m", "bench.echo_server", "--port", "0", "--protocol", "socketio"]
        elif kind == "aedes":
            command = ["node", str(AEDES_BROKER), "--whole-packets"]
        elif kind == "refserver-socketio":  # warnings only: a log line per connection would be server CPU
            command = [PYTHON, "-m", "refserver", "--host", "127.0.0.1", "--port", "0", "--protocol", "socketio"]
            command += ["--log-level", "WARNING"]
        else:
            command = [PYTHON, "-m", "refserver", "--host", "127.0.0.1", "--port", "0"]
        self.proc = subprocess.Popen(  # the server process
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=pinned(SERVER_CPU),  # noqa: PLW1509
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 20
        # mosquitto logs nothing (a line per client into a pipe nobody reads would block it).
        ready = accepts(self.port, self.proc, deadline) if kind == "mosquitto" else self._read_port(deadline)
        if not ready:
            self.stop()
            raise RuntimeError(f"the {kind} server did not start")
        self.pid = self.proc.pid  # watched by the pack's monitor
        self.url = f"ws://127.0.0.1:{self.port}/"  # where the generators connect

    def _read_port(self, deadline: float) -> bool:
        """Read the port from the server's readiness line ("listening PORT" or "... port=PORT ...")."""
        assert self.proc.stdout is not None
        while time.monotonic() < deadline and not self.port:
            line = self.proc.stdout.readline()
            if not line:
                break
            words = line.replace("=", " ").split()
            if words[:1] == ["listening"]:
                self.port = int(words[1])
            elif "port" in words:
                self.port = int(words[words.index("port") + 1])
        return bool(self.port)

    def cpu_s(self) -> float:
        """The server's CPU seconds so far (user + system), or 0.0 where /proc cannot tell."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def stop(self) -> None:
        """Stop the server (bounded)."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.config is not None:
            self.config.cleanup()


# --- the generators ----------------------------------------------------------------------


def node_ready() -> str | None:
    """None when the Node.js clients can run (installing `ws` and `socket.io-client` if needed), else why not."""
    if shutil.which("node") is None:
        return "node not found on PATH: the Node.js ws comparison is skipped"
    if not all((NODE_DIR / "node_modules" / name).is_dir() for name in ("ws", "socket.io-client", "mqtt")):
        npm = shutil.which("npm")
        if npm is None:
            return "npm not found: cannot install ws for the Node.js comparison"
        log("installing ws and socket.io-client into bench/node/node_modules (npm ci)")
        lock = (NODE_DIR / "package-lock.json").exists()
        try:
            subprocess.run(
                [npm, "ci" if lock else "install", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            return f"npm could not install ws ({error}): the Node.js comparison is skipped"
    return None


def generator(client: str, mode: str, url: str, **options: Any) -> list[str]:
    """The command line of one generator run."""
    flags = [
        f"--{name.replace('_', '-')}" + ("" if value is True else f"={value}")
        for name, value in options.items()
        if value is not None and value is not False
    ]
    if client in ("node", "node-sio", "node-mqtt"):
        extra = ["--expose-gc"] if mode == "memory" else []
        args = [arg for flag in flags for arg in flag.split("=", 1)]
        script = NODE_DIR / {"node": "client.js", "node-sio": "sio_client.js", "node-mqtt": "mqtt_client.js"}[client]
        return ["node", *extra, str(script), "--mode", mode, "--url", url, *args]
    return [PYTHON, "-m", "bench.python_gen", "--client", client, "--mode", mode, "--url", url, *flags]


# --- statistics ----------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float | None:
    """The `share` quantile (nearest rank) of `values`, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def timing_errors(cycles: list[list[float]], hold_ms: float, pause_ms: float) -> dict[str, Any]:
    """Hold-time and cycle-time errors from per-cycle timestamps (ms): start, connected, close start, closed, user.

    Hold error: |(close start - connected) - planned hold|. Cycle error: |(next start - start)
    - (planned hold + planned pause)|: how far the time between a user's successive connects
    strayed from the period it was asked for. A loop that sleeps relative to its own steps
    adds its connect and close times (and every late wake-up) to each cycle; a schedule on
    absolute deadlines takes them out of the pause.
    """
    holds = [abs((c[2] - c[1]) - hold_ms) for c in cycles]
    by_user: dict[int, list[list[float]]] = {}
    for c in cycles:
        by_user.setdefault(int(c[4]), []).append(c)
    errors = []
    for own in by_user.values():
        own.sort(key=lambda c: c[0])
        for this, following in zip(own, own[1:], strict=False):
            errors.append(abs((following[0] - this[0]) - (hold_ms + pause_ms)))
    return {
        "cycles": len(cycles),
        "hold_error_ms": {"p50": _round(percentile(holds, 0.5)), "p99": _round(percentile(holds, 0.99))},
        "cycle_error_ms": {"p50": _round(percentile(errors, 0.5)), "p99": _round(percentile(errors, 0.99))},
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def median_of(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def medians(runs: dict[str, list[dict]], digits: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per client: the median of each key over its runs, rounded to its digits, and the runs themselves."""
    return {
        client: {**{key: _round(median_of(results, key), places) for key, places in digits.items()}, "runs": results}
        for client, results in runs.items()
    }


# --- the parts -----------------------------------------------------------------------------


def part_server_check(seconds: float) -> dict[str, Any]:
    """Which server: the session loop's cycles/s against the refserver and against the fast echo server."""
    found = {}
    for kind in ("refserver", "fast"):
        server = Server(kind)
        try:
            found[kind] = run_json(
                generator("session", "throughput", server.url, users=48, seconds=seconds), timeout_s=seconds + 60
            ).get("cycles_per_s")
        finally:
            server.stop()
    return found


def part_throughput(server: Server, clients: list[str], repeats: int, seconds: float) -> dict[str, Any]:
    """Zero hold: cycles/s and CPU per 1,000 cycles, `repeats` interleaved runs per client."""
    runs: dict[str, list[dict]] = {client: [] for client in clients}
    for repeat in range(repeats):
        for client in clients:
            options: dict[str, Any] = {"users": 48, "seconds": seconds}
            if client == "pack":
                options.update(server_pid=server.pid, server_port=server.port)
            if client == "pack-no-events":
                options.update(no_events=True)
            if client == "pack-json3":
                options.update(conversation=str(JSON3_CONVERSATION))
            kind = client if client in ("plain", "session", "node") else "pack"
            command = generator(kind, "throughput", server.url, **options)
            result = run_json(command, timeout_s=seconds + 60)
            runs[client].append(result)
            log(f"throughput {client} #{repeat + 1}: {_brief(result)}")
    return medians(runs, {"cycles_per_s": 0, "cpu_s_per_1000": 4})


def part_socketio(
    server: Server, clients: list[str], repeats: int, seconds: float, conversation: Path = SOCKETIO_CONVERSATION
) -> dict[str, Any]:
    """Zero hold, one protocol cycle: cycles/s and CPU per 1,000 cycles, `repeats` interleaved runs per client.

    Each run also notes the server's CPU per 1,000 cycles and its share of a core, to show
    when the server, not the client, set the rate.
    """
    runs: dict[str, list[dict]] = {client: [] for client in clients}
    for repeat in range(repeats):
        for client in clients:
            options: dict[str, Any] = {"users": 48, "seconds": seconds}
            if client == "pack":  # everything on, as in part 1's pack row
                options.update(server_pid=server.pid, server_port=server.port, conversation=str(conversation))
            server_cpu0, wall0 = server.cpu_s(), time.monotonic()
            result = run_json(generator(client, "throughput", server.url, **options), timeout_s=seconds + 60)
            server_cpu, wall = server.cpu_s() - server_cpu0, time.monotonic() - wall0
            if "error" not in result:
                # Over the whole run (warm-up included): the server's cost per cycle, roughly.
                total = result["cycles_per_s"] * wall
                result["server_cpu_s_per_1000"] = server_cpu / total * 1000 if total else None
                result["server_cpu_share"] = server_cpu / wall
            runs[client].append(result)
            log(
                f"{conversation.stem} {client} #{repeat + 1}: {_brief(result)}, "
                f"server CPU {result.get('server_cpu_share')}"
            )
    return medians(runs, {"cycles_per_s": 0, "cpu_s_per_1000": 4, "server_cpu_s_per_1000": 4, "server_cpu_share": 2})


def _brief(result: dict) -> str:
    if "error" in result:
        return f"ERROR {result['error'][:200]}"
    return ", ".join(
        f"{key} {result[key]:.4g}"
        for key in ("cycles_per_s", "cpu_s_per_1000", "bytes_per_connection")
        if result.get(key) is not None
    ) + (f", errors {result['errors']}" if result.get("errors") else "")


def part_timing(server: Server, clients: list[str], user_counts: list[int], seconds: float) -> dict[str, Any]:
    """Hold 100 ms, pause 50 ms: errors per client and user count."""
    found: dict[str, Any] = {}
    for users in user_counts:
        for client in clients:
            options: dict[str, Any] = {"users": users, "seconds": seconds, "hold_ms": HOLD_MS, "pause_ms": PAUSE_MS}
            if client == "pack":
                options.update(server_pid=server.pid, server_port=server.port)
            result = run_json(generator(client, "timing", server.url, **options), timeout_s=seconds + 90)
            if "error" in result:
                found.setdefault(client, {})[str(users)] = {"error": result["error"]}
                log(f"timing {client} {users} users: ERROR {result['error'][:200]}")
                continue
            summary = timing_errors(result["cycles"], HOLD_MS, PAUSE_MS)
            summary["cpu_share"] = _round(result.get("cpu_share"), 3)
            summary["errors"] = result.get("errors", {})
            found.setdefault(client, {})[str(users)] = summary
            log(
                f"timing {client} {users} users: hold p99 {summary['hold_error_ms']['p99']} ms, "
                f"cycle p99 {summary['cycle_error_ms']['p99']} ms, {summary['cycles']} cycles"
            )
    return found


def part_memory(server: Server, clients: list[str], connections: int) -> dict[str, Any]:
    """Generator RSS per open connection."""
    found = {}
    for client in clients:
        result = run_json(generator(client, "memory", server.url, connections=connections), timeout_s=180)
        found[client] = result
        log(f"memory {client}: {_brief(result)}")
    return found


def part_monitor(server: Server, sockets: int) -> dict[str, Any]:
    """The monitor's cost while the server holds `sockets` sockets (half held open, the rest TIME_WAIT)."""
    holder = subprocess.Popen(
        [PYTHON, "-m", "bench.hold_sockets", "--port", str(server.port)]
        + ["--established", str(sockets // 2), "--total", str(sockets), "--seconds", "150"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=pinned(GENERATOR_CPU),  # noqa: PLW1509
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()  # "ready <count>", within the holder's own time bound
        if not line.startswith("ready"):
            return {"error": f"the socket holder did not get ready: {line.strip()}"}
        result = run_json(
            [PYTHON, "-m", "bench.monitor_cost", "--pid", str(server.pid), "--port", str(server.port)],
            timeout_s=120,
        )
        log(f"monitor: {json.dumps(result)[:300]}")
        return result
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        try:
            holder.wait(30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(10)


def part_sustained(server: Server, seconds: float, users: int, disconnect: str, sources: int) -> dict[str, Any]:
    """The pack's users at full rate for `seconds`: cycles/s and errors."""
    command = generator(
        "pack",
        "sustained",
        server.url,
        users=users,
        seconds=seconds,
        disconnect=disconnect,
        source_addresses=sources,
        server_pid=server.pid,
        server_port=server.port,
    )
    result = run_json(command, timeout_s=seconds + 120)
    log(f"sustained {disconnect} {sources} source address(es), {seconds:.0f} s: {_brief(result)}")
    return result


# --- the verdict on the targets -------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether this run meets it."""
    rows = []

    def row(name: str, observed: float | None, limit: float, detail: str) -> None:
        met = None if observed is None else observed <= limit
        rows.append({"target": name, "observed": _round(observed, 3), "limit": limit, "met": met, "detail": detail})

    cpu = {client: data.get("cpu_s_per_1000") for client, data in results.get("throughput", {}).items()}
    pack = cpu.get("pack")
    ratio = lambda a, b: None if a is None or not b else a / b  # noqa: E731
    row("cpu_vs_plain", ratio(pack, cpu.get("plain")), TARGETS["cpu_vs_plain"], "pack / plain websocket-client")
    row("cpu_vs_node", ratio(pack, cpu.get("node")), TARGETS["cpu_vs_node"], "pack / Node.js ws")
    bookkeeping = ratio(pack, cpu.get("session"))
    silent = cpu.get("pack-no-events")
    session = cpu.get("session")
    events_share = None if pack is None or silent is None or not session else (pack - silent) / session
    row(
        "bookkeeping",
        None if bookkeeping is None else bookkeeping - 1,
        TARGETS["bookkeeping"],
        "pack in Locust with monitor / the same client in a bare loop, minus 1"
        + ("" if events_share is None else f"; Locust's request events alone {events_share:.1%}"),
    )
    timing = results.get("timing", {})
    hold = timing.get("pack", {}).get("100", {}).get("hold_error_ms", {}).get("p99")
    row("hold_p99_ms_at_100", hold, TARGETS["hold_p99_ms_at_100"], "pack, 100 users, hold 100 ms / pause 50 ms")
    pack_cycle = timing.get("pack", {}).get("200", {}).get("cycle_error_ms", {}).get("p99")
    plain_cycle = timing.get("plain", {}).get("200", {}).get("cycle_error_ms", {}).get("p99")
    row(
        "cycle_p99_vs_plain_at_200",
        ratio(pack_cycle, plain_cycle),
        TARGETS["cycle_p99_vs_plain_at_200"],
        f"pack {pack_cycle} ms / plain {plain_cycle} ms, 200 users",
    )
    monitor = results.get("monitor", {})
    row(
        "monitor_sample_cpu_ms",
        monitor.get("sample_cpu_ms", {}).get("median"),
        TARGETS["monitor_sample_cpu_ms"],
        f"median, {monitor.get('server_sockets')} server sockets",
    )
    row(
        "monitor_stall_ms",
        monitor.get("stall_while_monitoring_ms"),
        TARGETS["monitor_stall_ms"],
        f"longest stall (floor without monitor: {monitor.get('stall_floor_ms')} ms)",
    )
    row(
        "bytes_per_connection",
        results.get("memory", {}).get("pack", {}).get("bytes_per_connection"),
        TARGETS["bytes_per_connection"],
        "pack users holding connections, RSS growth / connections",
    )
    sio = {client: data.get("cpu_s_per_1000") for client, data in results.get("socketio", {}).items()}
    if sio:
        sio_pack = sio.get("pack")
        row(
            "sio_cpu_vs_node",
            ratio(sio_pack, sio.get("node-sio")),
            TARGETS["sio_cpu_vs_node"],
            "Socket.IO cycle: pack / Node.js socket.io-client",
        )
        row(
            "sio_cpu_vs_python",
            ratio(sio_pack, sio.get("sio-python")),
            TARGETS["sio_cpu_vs_python"],
            "Socket.IO cycle: pack / python-socketio",
        )
    # Against mosquitto only (part 7): there the clients, not the broker, set the rate.
    mqtt = {client: data.get("cpu_s_per_1000") for client, data in results.get("mqtt", {}).items()}
    row("mqtt_cpu_vs_node", ratio(mqtt.get("pack"), mqtt.get("node-mqtt")), TARGETS["mqtt_cpu_vs_node"],
        "MQTT cycle against mosquitto: pack / Node.js mqtt")  # fmt: skip
    row("mqtt_cpu_vs_paho", ratio(mqtt.get("pack"), mqtt.get("paho")), TARGETS["mqtt_cpu_vs_paho"],
        "MQTT cycle against mosquitto: pack / paho-mqtt in gevent")  # fmt: skip
    sustained = results.get("sustained", {}).get("main", {})
    if sustained:
        rows.append(
            {
                "target": "sustained_errors",
                "observed": sustained.get("error_count"),
                "limit": 0,
                "met": sustained.get("error_count") == 0 if "error_count" in sustained else None,
                "detail": f"{sustained.get('seconds', 0):.0f} s at {sustained.get('cycles_per_s', 0):.0f} cycles/s",
            }
        )
    return rows


def table(results: dict[str, Any]) -> str:
    """The results as text tables."""
    out = [f"machine: {results['machine']['summary']}", ""]
    throughput = results.get("throughput", {})
    if throughput:
        out.append("zero hold                 cycles/s   CPU-s/1000 cycles")
        for client, data in throughput.items():
            out.append(f"  {client:<22}{data['cycles_per_s'] or 0:>9.0f}   {data['cpu_s_per_1000'] or 0:>8.4f}")
        out.append("")
    timing = results.get("timing", {})
    if timing:
        out.append("hold 100 ms / pause 50 ms: error p50/p99 ms (hold | cycle)")
        counts = sorted({int(users) for data in timing.values() for users in data})
        out.append("  users   " + "".join(f"{client:>26}" for client in timing))
        for users in counts:
            cells = []
            for data in timing.values():
                entry = data.get(str(users), {})
                if "hold_error_ms" in entry:
                    h, c = entry["hold_error_ms"], entry["cycle_error_ms"]
                    cells.append(f"{h['p50']}/{h['p99']} | {c['p50']}/{c['p99']}")
                else:
                    cells.append("-")
            out.append(f"  {users:<8}" + "".join(f"{cell:>26}" for cell in cells))
        out.append("")
    memory = results.get("memory", {})
    if memory:
        out.append("memory per open connection")
        for client, data in memory.items():
            value = data.get("bytes_per_connection")
            out.append(f"  {client:<22}{'-' if value is None else f'{value / 1024:.1f} KB'}")
        out.append("")
    monitor = results.get("monitor", {})
    if monitor and "error" not in monitor:
        out.append(
            f"monitor at {monitor['server_sockets']} server sockets: sample CPU median "
            f"{monitor['sample_cpu_ms']['median']} ms (TCP states {monitor['tcp_states_cpu_ms']['median']} ms, "
            f"psutil net_connections {monitor['net_connections_cpu_ms']['median']} ms); "
            f"stall {monitor['stall_while_monitoring_ms']} ms (floor {monitor['stall_floor_ms']} ms)"
        )
        out.append("")
    for name, data in results.get("sustained", {}).items():
        if "error" in data:
            out.append(f"sustained {name}: ERROR {data['error'][:200]}")
            continue
        out.append(
            f"sustained {name}: {data.get('seconds', 0):.0f} s, {data.get('cycles_per_s', 0):.0f} cycles/s, "
            f"{data.get('error_count')} errors {data.get('errors') or ''}"
        )
    for key, title in (
        ("socketio", "Socket.IO, zero hold   "),
        ("mqtt", "MQTT (mosquitto)       "),
        ("mqtt_aedes", "MQTT (aedes)           "),
    ):
        rows = results.get(key, {})
        if not rows:
            continue
        out.append(f"{title}   cycles/s   CPU-s/1000 cycles   server: CPU-s/1000, share of a core")
        for client, data in rows.items():
            cost, share = data.get("server_cpu_s_per_1000"), data.get("server_cpu_share")
            out.append(
                f"  {client:<22}{data['cycles_per_s'] or 0:>9.0f}   {data['cpu_s_per_1000'] or 0:>8.4f}"
                f"            {'-' if cost is None else f'{cost:.4f}'}, {'-' if share is None else f'{share:.2f}'}"
            )
        out.append("")
    out.append("")
    out.append("targets")
    for row in results.get("targets", []):
        verdict = {True: "met", False: "NOT met", None: "not measured"}[row["met"]]
        observed = f"{row['target']:<28}{str(row['observed']):>12} (limit {row['limit']})"
        out.append(f"  {observed}  {verdict}: {row['detail']}")
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """What the numbers came from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = shutil.which("node")
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else None
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node_version,
        "pinned": can_pin(),
        "load_average_at_start": os.getloadavg(),
    }
    pinning = f"generator pinned to core {GENERATOR_CPU}, server to core {SERVER_CPU}" if can_pin() else "no pinning"
    info["summary"] = (
        f"{model or 'unknown CPU'}, {info['cores']} cores, Linux {info['kernel']}, Python {info['python']}, "
        f"Node {node_version or 'none'}; {pinning}"
    )
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description="The flapping-pack generator benchmark.")
    parser.add_argument("--quick", action="store_true", help="short parts, about two minutes, for development")
    parser.add_argument("--sustained-s", type=float, default=None, help="length of the sustained run (default 600)")
    parser.add_argument("--parts", default="server,throughput,timing,memory,monitor,sustained,socketio,mqtt")
    parser.add_argument("--out", default=str(BENCH / "results" / "latest.json"))
    parser.add_argument(
        "--socketio-server",
        choices=sorted(SOCKETIO_SERVERS),
        default="bench",
        help="part 6's server: the benchmark's (default) or the bundled refserver, which costs as much as the clients",
    )
    args = parser.parse_args()
    quick = args.quick
    parts = set(args.parts.split(","))
    sustained_s = min(args.sustained_s if args.sustained_s is not None else (20.0 if quick else 600.0), 900.0)
    if can_pin():
        os.sched_setaffinity(0, {SERVER_CPU})  # this process mostly waits; keep it off the generator's core
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    skip_node = node_ready()
    if skip_node:
        log(skip_node)
        results["node_skipped"] = skip_node
    clients = ["plain", "session", "pack", "pack-no-monitor", "pack-no-events", "pack-json3"]
    clients += [] if skip_node else ["node"]
    timing_clients = ["plain", "pack"] + ([] if skip_node else ["node"])
    memory_clients = ["plain", "session", "pack"] + ([] if skip_node else ["node"])
    if "server" in parts:
        log("part 0: which server")
        results["server_check"] = part_server_check(3.0)
    server = Server("fast")
    results["server"] = "bench/echo_server.py (one epoll thread)"
    try:
        if "throughput" in parts:
            log("part 1: throughput at zero hold")
            results["throughput"] = part_throughput(server, clients, 1 if quick else 3, 3.0 if quick else 6.0)
        if "timing" in parts:
            log("part 2: timing at 100 ms hold / 50 ms pause")
            counts = [25, 100, 200] if quick else [25, 50, 100, 200, 300]
            results["timing"] = part_timing(server, timing_clients, counts, 4.0 if quick else 10.0)
        if "memory" in parts:
            log("part 3: memory per open connection")
            results["memory"] = part_memory(server, memory_clients, 1000 if quick else 2000)
        if "monitor" in parts:
            log("part 4: monitor cost at 10,000 server sockets")
            results["monitor"] = part_monitor(server, 10000)
        if "sustained" in parts:
            log(f"part 5: sustained flapping, {sustained_s:.0f} s")
            results["sustained"] = {"main": part_sustained(server, sustained_s, 48, "clean", 1)}
            short = 10.0 if quick else 60.0
            for sources in (1, 4):
                results["sustained"][f"client-time-wait-{sources}-sources"] = part_sustained(
                    server, short, 48, "abrupt", sources
                )
    finally:
        server.stop()
    if "socketio" in parts:
        log("part 6: a Socket.IO cycle at zero hold")
        sio_server = Server(SOCKETIO_SERVERS[args.socketio_server][0])
        results["socketio_server"] = SOCKETIO_SERVERS[args.socketio_server][1]
        try:
            sio_clients = ["pack"] + ([] if skip_node else ["node-sio"]) + ["sio-python"]
            results["socketio"] = part_socketio(sio_server, sio_clients, 1 if quick else 3, 3.0 if quick else 6.0)
        finally:
            sio_server.stop()
    if "mqtt" in parts:
        mqtt_clients = ["pack"] + ([] if skip_node else ["node-mqtt"]) + ["paho"]
        for key, broker, about in MQTT_BROKERS:
            log(f"part 7: an MQTT cycle at zero hold, against {broker}")
            why_not = mqtt_broker_missing(broker)
            if why_not:
                log(why_not)
                results[f"{key}_skipped"] = why_not
                continue
            mqtt_server = Server(broker)
            results[f"{key}_server"] = about
            try:
                results[key] = part_socketio(
                    mqtt_server, mqtt_clients, 1 if quick else 3, 3.0 if quick else 6.0, MQTT_CONVERSATION
                )
            finally:
                mqtt_server.stop()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["targets"] = targets(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
