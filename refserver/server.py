"""The I/O of one server process: WebSocket echo or the app protocol, agents, /metrics and the fault modes."""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from childproc import serve as childproc_serve
from childproc.bind_address import resolve_bind_address
from refserver.agents import Agent, AgentRegistry
from refserver.app_protocol import AppSession, StreamHub, subscribed
from refserver.auth import is_authorized, path_without_query
from refserver.cli import ServerConfig
from refserver.launch import READY_LINE
from refserver.mqtt_mode import MQTT_PROTOCOL, SUBPROTOCOLS, MqttBroker, serve_mqtt
from refserver.socketio_mode import SOCKETIO_PROTOCOL, SocketIOSession, handshake_problem, serve_socketio

logger = logging.getLogger("refserver")

METRICS_PATH = "/metrics"
# Lets a client tell which worker process accepted it (handy with --workers).
PID_HEADER = "X-Refserver-Pid"
# Bounds shutdown: clients get this long to answer our close frame, then the rest is cut.
CLOSE_TIMEOUT_S = 1.0
SHUTDOWN_TIMEOUT_S = 1.5

# The fault modes' garbage: module-level so nothing ever frees it, like a real leak.
_LEAKED_MEMORY: list[bytes] = []
_LEAKED_FDS: list[int] = []


class ServerMetrics:
    """The Prometheus metrics of one server process, in a registry of their own."""

    def __init__(self, active_connections: Callable[[], int], active_agents: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()  # dedicated, so nothing else leaks into /metrics
        ProcessCollector(registry=self.registry)
        # Sampled at scrape time from the live counts, so they cannot drift.
        Gauge("refserver_active_connections", "Open WebSocket connections.", registry=self.registry).set_function(
            active_connections
        )
        Gauge("refserver_active_agents", "Agents in the registry.", registry=self.registry).set_function(active_agents)
        self.connections_total = Counter(
            "refserver_connections_total", "Accepted WebSocket connections.", registry=self.registry
        )  # incremented once per accepted handshake
        self.handshake_rejections_total = Counter(
            "refserver_handshake_rejections_total",
            "WebSocket handshakes answered with an HTTP error, by reason.",
            ["reason"],
            registry=self.registry,
        )  # reasons: auth, capacity, fault
        for reason in ("auth", "capacity", "fault"):
            self.handshake_rejections_total.labels(reason=reason)

    def exposition(self) -> bytes:
        """Render the metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class RefServer:
    """Handshake policy and connection handler of one server process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config  # parsed once by the CLI
        self.agents = AgentRegistry()  # one agent per connection, freed at close unless a fault leaks it
        self.active_connections = 0  # connections whose handler is running
        self._websocket_handshakes = 0  # counts handshakes that reached the reject-pct decision
        self.metrics = ServerMetrics(lambda: self.active_connections, lambda: len(self.agents))
        self.streams = StreamHub(config.faults.lose_on_resume)  # app protocol: every user's stream
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}  # stream -> the queues of its subscribed connections
        self._ticker: asyncio.Task[None] | None = None  # ticks the streams, from the first subscribe on
        self.mqtt = MqttBroker(self.agents, config.faults, config.auth_token)  # mqtt: sessions and subscriptions

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer /metrics, or decide whether a WebSocket handshake goes ahead."""
        if path_without_query(request.path) == METRICS_PATH and "Upgrade" not in request.headers:
            return self._metrics_response()
        if self.config.protocol == SOCKETIO_PROTOCOL:
            problem = handshake_problem(request.path)
            if problem is not None:
                return connection.respond(http.HTTPStatus(problem[0]), problem[1])
        faults = self.config.faults
        if faults.slow_handshake_ms:
            await asyncio.sleep(faults.slow_handshake_ms / 1000)
        if faults.block_loop_ms:
            # The bug: synchronous work on the event loop (a blocking call in a handler),
            # so every other connection waits while a client connects.
            time.sleep(faults.block_loop_ms / 1000)
        # The app protocol authenticates in-band, with its auth message; echo checks the handshake.
        if (
            self.config.auth_token is not None
            and self.config.protocol == "echo"
            and not is_authorized(self.config.auth_token, request.headers.get("Authorization"), request.path)
        ):
            self.metrics.handshake_rejections_total.labels(reason="auth").inc()
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Missing or wrong bearer token.\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        # Soft cap: handshakes in flight at the same moment may overshoot it slightly.
        if self.active_connections >= self.config.max_connections:
            self.metrics.handshake_rejections_total.labels(reason="capacity").inc()
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections.\n")
        index = self._websocket_handshakes
        self._websocket_handshakes += 1
        if faults.should_reject(index):
            self.metrics.handshake_rejections_total.labels(reason="fault").inc()
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Rejected by --reject-pct.\n")
        return None

    def process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        """Tag every response with the pid of the process that answered."""
        response.headers[PID_HEADER] = str(os.getpid())

    def _metrics_response(self) -> Response:
        body = self.metrics.exposition()
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", CONTENT_TYPE_LATEST),
            ]
        )
        return Response(http.HTTPStatus.OK.value, http.HTTPStatus.OK.phrase, headers, body)

    def _inject_connection_faults(self) -> None:
        faults = self.config.faults
        if faults.leak_memory_kb:
            # Repetition writes every byte, so the leak is resident, not just reserved.
            _LEAKED_MEMORY.append(b"\x5a" * (faults.leak_memory_kb * 1024))
        if faults.leak_fds:
            _LEAKED_FDS.append(os.open(os.devnull, os.O_RDONLY))

    async def handle(self, connection: ServerConnection) -> None:
        """Serve one connection in the configured protocol, with an agent for its session.

        Echo opens the agent at once; the app protocol opens it when the client authenticates;
        Socket.IO opens one per namespace session (socketio_mode.py).
        """
        assert connection.request is not None  # the handler only runs after a handshake
        remote = ":".join(str(part) for part in connection.remote_address[:2])
        path = path_without_query(connection.request.path)
        attributes = {"user_agent": connection.request.headers.get("User-Agent", "")}
        agent: Agent | None = None
        if self.config.protocol == "echo":
            agent = self.agents.open(remote, path, attributes)
            logger.debug("agent %d opened for %s", agent.agent_id, remote)
        self.active_connections += 1
        self.metrics.connections_total.inc()
        self._inject_connection_faults()
        dropped = False
        try:
            if agent is not None:
                async for message in connection:
                    agent.record_message(len(message))
                    await connection.send(message)
            elif self.config.protocol == MQTT_PROTOCOL:
                # An agent per MQTT session, freed (kept, or leaked) by serve_mqtt itself.
                await serve_mqtt(connection, self.mqtt, remote, attributes)
            elif self.config.protocol == SOCKETIO_PROTOCOL:
                # Agents per namespace session, freed (or leaked) by serve_socketio itself.
                await serve_socketio(
                    connection,
                    self._socketio_session(connection.request),
                    self.agents,
                    self.config.faults,
                    remote,
                    attributes,
                    self.config.ping_interval_ms / 1000,
                    self.config.ping_timeout_ms / 1000,
                )
            else:
                await self._serve_app(connection, remote, path, attributes)
        except ConnectionClosed as exc:
            # No close frame received: the client vanished (crash, network cut, kill -9).
            dropped = exc.rcvd is None
        finally:
            self.active_connections -= 1
            if agent is not None:
                self._end_agent(agent, dropped)

    def _end_agent(self, agent: Agent, dropped: bool) -> None:
        freed = self.config.faults.should_free_agent(dropped=dropped)
        if freed:
            self.agents.close(agent.agent_id)
        logger.debug(
            "agent %d %s, %s", agent.agent_id, "dropped" if dropped else "closed", "freed" if freed else "leaked"
        )

    async def _serve_app(
        self, connection: ServerConnection, remote: str, path: str, attributes: dict[str, str]
    ) -> None:
        """The app protocol on one connection: its agent, and the stream it subscribes to, if any."""
        agent: Agent | None = None
        dropped = False
        queue: asyncio.Queue[str] | None = None  # this connection's stream frames, in order
        pump: asyncio.Task[None] | None = None  # sends them
        stream: str | None = None  # the stream subscribed to
        try:
            session = AppSession(self.config.auth_token)
            await connection.send(session.greeting())
            async for message in connection:
                reply = session.receive(message)
                if reply.subscribe is not None:
                    if stream is not None and queue is not None:
                        self._subscribers.get(stream, set()).discard(queue)  # one stream per connection
                    stream, after = reply.subscribe
                    replay = self.streams.subscribe(stream, after)
                    await connection.send(subscribed(stream, len(replay)))
                    if queue is None:
                        queue = asyncio.Queue()
                        pump = asyncio.create_task(_pump(connection, queue))
                    for frame in replay:
                        queue.put_nowait(frame)
                    # No await since the replay: nothing slips between it and the live messages.
                    self._subscribers.setdefault(stream, set()).add(queue)
                    self._start_ticker()
                    continue
                if reply.open_agent:
                    agent = self.agents.open(remote, path, attributes)
                    logger.debug("agent %d opened for %s", agent.agent_id, remote)
                if reply.counts_as_agent_message and agent is not None:
                    agent.record_message(len(message))
                for text in reply.send:
                    await connection.send(text)
                if reply.close_code is not None:
                    await connection.close(reply.close_code, reply.close_reason)
                    break
        except ConnectionClosed as exc:
            dropped = exc.rcvd is None
        finally:
            if stream is not None and queue is not None:
                self._subscribers.get(stream, set()).discard(queue)
            if pump is not None:
                pump.cancel()
            if agent is not None:
                self._end_agent(agent, dropped)

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_streams())

    async def _tick_streams(self) -> None:
        """Every --stream-interval-ms, one message on every stream; a subscribed connection gets it."""
        interval_s = self.config.stream_interval_ms / 1000
        next_tick = asyncio.get_running_loop().time()
        while True:
            now = asyncio.get_running_loop().time()
            next_tick = max(next_tick + interval_s, now - 10 * interval_s)  # a stalled loop catches up, briefly
            await asyncio.sleep(max(0.0, next_tick - now))
            subscribers = self._subscribers
            for name, frame in self.streams.tick():
                for queue in subscribers.get(name, ()):
                    queue.put_nowait(frame)

    def _socketio_session(self, request: Request) -> SocketIOSession:
        token = self.config.auth_token
        return SocketIOSession(
            expected_token=token,
            # Socket.IO apps may check the handshake's token as well as the CONNECT auth payload.
            handshake_authorized=token is not None
            and is_authorized(token, request.headers.get("Authorization"), request.path),
            ping_interval_ms=self.config.ping_interval_ms,
            ping_timeout_ms=self.config.ping_timeout_ms,
            max_payload=self.config.max_message_bytes,
        )

    def serve(self, host: str, port: int, *, reuse_port: bool = False) -> Server:
        """Create the websockets server; await it to start listening."""
        return serve(
            self.handle,
            host,
            port,
            process_request=self.process_request,
            process_response=self.process_response,
            max_size=self.config.max_message_bytes,
            close_timeout=CLOSE_TIMEOUT_S,
            # The slow-handshake fault must not trip the handshake timeout by itself.
            open_timeout=10 + self.config.faults.slow_handshake_ms / 1000,
            backlog=1024,  # flapping clients connect in bursts
            subprotocols=SUBPROTOCOLS if self.config.protocol == MQTT_PROTOCOL else None,
            reuse_port=reuse_port,
        )


async def _pump(connection: ServerConnection, queue: asyncio.Queue[str]) -> None:
    """Send a connection's stream frames in order until it closes (then what is queued is lost with it)."""
    try:
        while True:
            await connection.send(await queue.get())
    except ConnectionClosed:
        pass


async def serve_until_signalled(
    config: ServerConfig,
    *,
    host: str,
    port: int,
    announce: Callable[[int], None],
    stop_signals: Iterable[signal.Signals] = childproc_serve.STOP_SIGNALS,
    reuse_port: bool = False,
) -> None:
    """Serve until one of ``stop_signals`` arrives; call ``announce(port)`` once listening."""
    refserver = RefServer(config)
    server = await childproc_serve.serve_until_signalled(
        lambda: refserver.serve(host, port, reuse_port=reuse_port), announce=announce, stop_signals=stop_signals
    )
    try:
        await asyncio.wait_for(server.wait_closed(), SHUTDOWN_TIMEOUT_S)
    except TimeoutError:
        logger.warning("connections still open after %.1f s; cutting them", SHUTDOWN_TIMEOUT_S)


def log_start(config: ServerConfig, host: str, port: int) -> None:
    """Log the listening address, limits and every enabled fault mode."""
    logger.info(
        "refserver listening on %s port %d (pid %d, protocol %s, workers %d, max connections %d, max message %d bytes, "
        "auth %s)",
        host,
        port,
        os.getpid(),
        config.protocol,
        config.workers,
        config.max_connections,
        config.max_message_bytes,
        "on" if config.auth_token is not None else "off",
    )
    for fault in config.faults.describe():
        logger.info("fault mode on: %s", fault)


def run_single(config: ServerConfig) -> int:
    """Serve in this process until SIGTERM or SIGINT; return the exit code."""

    def announce(port: int) -> None:
        log_start(config, address, port)
        READY_LINE.announce(port, os.getpid())

    try:
        _, address = resolve_bind_address(config.host, config.port)
        asyncio.run(serve_until_signalled(config, host=address, port=config.port, announce=announce))
    except OSError as exc:
        logger.error("cannot serve on %s port %d: %s", config.host, config.port, exc)
        return 1
    logger.info("refserver stopped")
    return 0
