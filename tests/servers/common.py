"""What every test server shares: its command line, agents and leaks, /metrics, and the uvicorn runner.

Fault names are the same everywhere they apply:

- ``leak-agents``: the session's agent is never removed;
- ``leak-agents-on-drop``: it is removed only when the client closed cleanly (a close frame,
  or for Socket.IO its DISCONNECT packet); a client that vanished leaves it behind;
- ``leak-memory``: each session leaves ``--leak-memory-kb`` KiB (default 128) behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest

from childproc.parent_death import die_with_parent
from refserver.agents import Agent, AgentRegistry
from refserver.auth import same_secret
from tests.servers import AUTH_TOKEN_ENV, READY_LINE

LEAK_AGENTS = "leak-agents"
LEAK_AGENTS_ON_DROP = "leak-agents-on-drop"
LEAK_MEMORY = "leak-memory"
AGENT_FAULTS = {
    LEAK_AGENTS: "never remove a session's agent",
    LEAK_AGENTS_ON_DROP: "keep the agent of a client that vanished without a clean close",
    LEAK_MEMORY: "leave --leak-memory-kb KiB behind per session",
}
DEFAULT_LEAK_MEMORY_KB = 128
METRICS_PATH = "/metrics"
# Bounds a SIGTERM with sessions open: they get this long, then they are cut.
SHUTDOWN_TIMEOUT_S = 1

# Module-level, so nothing ever frees it: a real leak.
_LEAKED_MEMORY: list[bytes] = []

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("app-server")


def build_parser(prog: str, description: str, faults: Mapping[str, str]) -> argparse.ArgumentParser:
    """The options every test server has, plus ``--fault`` restricted to ``faults`` (name -> help)."""
    parser = argparse.ArgumentParser(prog=f"python -m tests.servers.{prog}", description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 = ephemeral (default)")
    parser.add_argument("--die-with-parent", action="store_true", help="exit when the parent process dies")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    if faults:
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            choices=sorted(faults),
            help="switch on a bug (repeatable): " + "; ".join(f"{name}: {text}" for name, text in faults.items()),
        )
        parser.add_argument(
            "--leak-memory-kb",
            type=int,
            default=DEFAULT_LEAK_MEMORY_KB,
            help="KiB each session leaves behind with --fault leak-memory (default %(default)s)",
        )
    else:
        parser.set_defaults(fault=[], leak_memory_kb=0)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse argv, read the token from the environment, set up logging and parent death."""
    args = parser.parse_args(argv)
    args.fault = frozenset(args.fault)
    token = os.environ.get(AUTH_TOKEN_ENV)
    if token is not None and not token.strip():
        parser.error(f"{AUTH_TOKEN_ENV} is set but empty; unset it to disable auth")
    args.auth_token = token
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.die_with_parent:
        die_with_parent()
    return args


def token_accepted(expected: str | None, given: object) -> bool:
    """Tell whether ``given`` is the required token (anything passes when none is required)."""
    if expected is None:
        return True
    return isinstance(given, str) and same_secret(given, expected)


class SessionAgents:
    """One agent per session, removed at its end unless a fault says otherwise."""

    def __init__(self, faults: frozenset[str], leak_memory_kb: int = DEFAULT_LEAK_MEMORY_KB) -> None:
        self.registry = AgentRegistry()  # live (or leaked) agents
        self._faults = faults  # the server's --fault names
        self._leak_bytes = leak_memory_kb * 1024 if LEAK_MEMORY in faults else 0  # left behind per session

    def open(self, remote: str, path: str) -> Agent:
        """Create the agent of a new session (and leak memory for it, with leak-memory)."""
        if self._leak_bytes:
            # Repetition writes every byte, so the leak is resident, not just reserved.
            _LEAKED_MEMORY.append(b"\x5a" * self._leak_bytes)
        return self.registry.open(remote, path)

    def close(self, agent: Agent, *, dropped: bool) -> bool:
        """End a session: remove its agent unless a leak fault keeps it; return whether it was removed."""
        if LEAK_AGENTS in self._faults or (dropped and LEAK_AGENTS_ON_DROP in self._faults):
            return False
        self.registry.close(agent.agent_id)
        return True

    def __len__(self) -> int:
        return len(self.registry)


class AppMetrics:
    """The Prometheus metrics of one test server, in a registry of its own."""

    def __init__(self, agents: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()  # dedicated, so nothing else leaks into /metrics
        ProcessCollector(registry=self.registry)
        self.connections_active = 0  # WebSocket connections being served
        Gauge("app_agents_active", "Per-session server objects alive.", registry=self.registry).set_function(agents)
        Gauge("app_connections_active", "Open WebSocket connections.", registry=self.registry).set_function(
            lambda: self.connections_active
        )
        self.connections_total = Counter(
            "app_connections_total", "WebSocket connections accepted or refused.", registry=self.registry
        )

    def exposition(self) -> bytes:
        """Render the metrics in the Prometheus text format."""
        return generate_latest(self.registry)


def is_drop(disconnect: Message) -> bool:
    """Tell whether an ASGI ``websocket.disconnect`` from uvicorn means the client vanished.

    uvicorn's websockets-sansio protocol reports a lost connection as code 1005 or 1006
    without a ``reason`` key; a received close frame carries its code and a reason.
    """
    return disconnect.get("code") in (1005, 1006) and "reason" not in disconnect


class ConnectionEnd:
    """Callbacks to run when an ASGI WebSocket connection ends, told whether the client vanished."""

    SCOPE_KEY = "tests.servers.connection_end"

    def __init__(self) -> None:
        self.dropped = False  # the last disconnect message said the client vanished
        self.callbacks: list[Callable[[bool], None]] = []  # run once, at the end

    @classmethod
    def of(cls, scope: Scope) -> ConnectionEnd:
        """The ConnectionEnd of a connection served through `with_metrics`."""
        end = scope[cls.SCOPE_KEY]
        assert isinstance(end, ConnectionEnd)
        return end

    def finish(self) -> None:
        """Run the callbacks (once)."""
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback(self.dropped)


def with_metrics(app: AsgiApp, metrics: AppMetrics) -> AsgiApp:
    """Wrap an ASGI app: serve GET /metrics, count WebSocket connections, report how each ended."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == METRICS_PATH:
            body = metrics.exposition()
            headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        end = ConnectionEnd()
        scope[ConnectionEnd.SCOPE_KEY] = end

        async def tracked_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                end.dropped = is_drop(message)
            return message

        metrics.connections_total.inc()
        metrics.connections_active += 1
        try:
            await app(scope, tracked_receive, send)
        finally:
            metrics.connections_active -= 1
            end.finish()

    return wrapped


def bind(host: str, port: int) -> socket.socket:
    """Bind (and listen on) the server's one socket, so the port is known before serving."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def accepted_until(listener: socket.socket, stopping: threading.Event) -> Iterator[socket.socket]:
    """The listener's connections, as they come, until `stopping` is set or the listener is closed.

    For the servers on threads: the listener has a timeout, so the loop looks at `stopping` that often.
    """
    while not stopping.is_set():
        try:
            sock, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        yield sock


def announce(sock: socket.socket) -> None:
    """Print the readiness line the launcher waits for."""
    READY_LINE.announce(sock.getsockname()[1], os.getpid())


def serve_uvicorn(app: AsgiApp, args: argparse.Namespace) -> int:
    """Serve ``app`` with uvicorn on one bound socket until SIGTERM; return the exit code (0)."""
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the process would end by
        # the signal (-15); these servers exit 0 on SIGTERM, as the refserver does.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            try:
                yield
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

        def stop(self) -> None:
            # A second signal cuts the graceful shutdown short.
            self.force_exit = self.should_exit
            self.should_exit = True

    sock = bind(args.host, args.port)
    config = uvicorn.Config(
        app,
        lifespan="off",
        # Pinned: is_drop() reads this protocol's disconnect messages.
        ws="websockets-sansio",
        log_level=args.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S,
        ws_ping_interval=None,  # no keepalive pings unless a server asks for them: the client's own choice
    )
    server = Server(config)

    async def run() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if serving.done():
                await serving  # raises what stopped it
                return
            await asyncio.sleep(0.01)
        announce(sock)
        await serving

    asyncio.run(run())
    return 0
