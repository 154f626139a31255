"""An aiohttp echo server that behaves like a broker: a cached agents gauge, and a reaper for dropped clients.

Real brokers do not free a vanished client at once (Socket.IO after 25 + 20 s, MQTT after
1.5 keepalives, SignalR 30 s, Phoenix 60 s), and they export their gauges from a cache
refreshed every few seconds. This server does both, with the clocks as arguments:

- Text and binary messages are echoed at /ws. Each session has an agent (its state).
- A clean close (a close frame from the client) frees the agent at once.
- A drop (the connection ends without a close frame: FIN or RST) frees it ``--reap-after-s``
  seconds after the drop (default 20).
- A half-open client (silent, no FIN) is noticed by the heartbeat: a ping after each quiet
  ``--heartbeat-s`` (default 5) and no pong within half of it end the connection; from then
  it is a drop like any other, reaped ``--reap-after-s`` later.
- ``app_agents_active`` is cached: it is refreshed every ``--metrics-refresh-s`` seconds
  (default 5; 0 = live), on a timer, as a broker's exporter does. ``app_agents_live`` is the
  live count, for tests.

Faults (``--fault``, repeatable): ``leak-agents`` (never free an agent: the reaper never
runs), ``leak-agents-on-drop`` (free only after a clean close), ``leak-memory``.

Metrics at GET /metrics: ``app_agents_active`` (cached), ``app_agents_live``,
``app_agents_reaped_total``, ``app_connections_active``, ``app_connections_total``, ``process_*``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge

from refserver.agents import Agent
from tests.servers.common import (
    AGENT_FAULTS,
    SHUTDOWN_TIMEOUT_S,
    AppMetrics,
    SessionAgents,
    announce,
    bind,
    build_parser,
    parse_args,
)


class CachedCount:
    """A count exported from a cache, as a broker's exporter does: refreshed on a timer, not per scrape."""

    def __init__(self, read: Callable[[], int], refresh_s: float) -> None:
        self._read = read  # the live count
        self.refresh_s = refresh_s  # seconds between refreshes; 0 = always live
        self._cached = read()  # the value scrapes see

    def value(self) -> int:
        """What a scrape sees now."""
        return self._read() if self.refresh_s <= 0 else self._cached

    async def refresh_forever(self) -> None:
        """Copy the live count into the cache every `refresh_s`."""
        if self.refresh_s <= 0:
            return
        loop = asyncio.get_running_loop()
        next_refresh = loop.time()
        while True:
            next_refresh += self.refresh_s
            await asyncio.sleep(max(0.0, next_refresh - loop.time()))
            self._cached = self._read()


def build_app(args: argparse.Namespace) -> tuple[web.Application, CachedCount]:
    """The aiohttp application (/ws echo, /metrics) and its cached agents gauge."""
    agents = SessionAgents(args.fault, args.leak_memory_kb)
    cached = CachedCount(lambda: len(agents), args.metrics_refresh_s)
    metrics = AppMetrics(cached.value)
    Gauge("app_agents_live", "Per-session server objects alive, uncached.", registry=metrics.registry).set_function(
        lambda: len(agents)
    )
    reaped = Counter("app_agents_reaped", "Agents of dropped clients freed by the reaper.", registry=metrics.registry)

    def reap(agent: Agent) -> None:
        if agents.close(agent, dropped=True):
            reaped.inc()

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=args.heartbeat_s)
        await ws.prepare(request)
        metrics.connections_total.inc()
        metrics.connections_active += 1
        remote = request.remote or "?"
        agent = agents.open(remote, request.path)
        clean = False
        try:
            while True:
                message = await ws.receive()
                if message.type == WSMsgType.TEXT:
                    agent.record_message(len(message.data))
                    await ws.send_str(message.data)
                elif message.type == WSMsgType.BINARY:
                    agent.record_message(len(message.data))
                    await ws.send_bytes(message.data)
                else:  # CLOSE (a close frame: clean), or CLOSED / ERROR (the connection ended)
                    clean = message.type == WSMsgType.CLOSE
                    break
        finally:
            metrics.connections_active -= 1
            if clean:
                agents.close(agent, dropped=False)
            else:
                asyncio.get_running_loop().call_later(args.reap_after_s, reap, agent)
        return ws

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/ws", echo), web.get("/metrics", metrics_page)])
    return app, cached


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app, cached = build_app(args)
    refresher = asyncio.create_task(cached.refresh_forever())
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    sock = bind(args.host, args.port)
    await web.SockSite(runner, sock).start()
    announce(sock)
    await stop.wait()
    refresher.cancel()
    await runner.cleanup()


def non_negative(text: str) -> float:
    """A number of seconds >= 0."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser("reaper_echo", "aiohttp echo with a cached agents gauge and a reaper.", AGENT_FAULTS)
    parser.add_argument("--reap-after-s", type=non_negative, default=20.0, help="free a dropped client this late")
    parser.add_argument(
        "--metrics-refresh-s", type=non_negative, default=5.0, help="refresh app_agents_active this often; 0 = live"
    )
    parser.add_argument("--heartbeat-s", type=float, default=5.0, help="ping after this many quiet seconds")
    asyncio.run(serve(parse_args(parser, argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
