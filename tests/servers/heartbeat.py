"""An aiohttp echo server whose WebSocket heartbeat is short: it pings every ``--heartbeat-s`` (default 1 s).

``web.WebSocketResponse(heartbeat=...)`` sends a ping after each quiet ``heartbeat`` seconds and
drops the connection (no close frame) when no pong comes within half of it. A client holding
a session longer than that must answer pings, as every real client does. Text and binary
messages are echoed at /ws. Healthy by definition: the only "fault" is the heartbeat itself.

Metrics at GET /metrics: ``app_agents_active`` (open sessions), ``app_connections_active``,
``app_connections_total``, ``app_heartbeat_timeouts_total`` (sessions dropped for a missing
pong) and ``process_*``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from tests.servers.common import SHUTDOWN_TIMEOUT_S, AppMetrics, announce, bind, build_parser, parse_args


def build_app(heartbeat_s: float) -> web.Application:
    """The aiohttp application: /ws echo with a heartbeat, /metrics."""
    sessions: set[web.WebSocketResponse] = set()
    metrics = AppMetrics(lambda: len(sessions))
    timeouts = Counter(
        "app_heartbeat_timeouts_total", "Sessions dropped because no pong came.", registry=metrics.registry
    )

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat_s)
        await ws.prepare(request)
        metrics.connections_total.inc()
        metrics.connections_active += 1
        sessions.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await ws.send_str(message.data)
                elif message.type == WSMsgType.BINARY:
                    await ws.send_bytes(message.data)
        finally:
            sessions.discard(ws)
            metrics.connections_active -= 1
            if isinstance(ws.exception(), asyncio.TimeoutError):
                timeouts.inc()
        return ws

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/ws", echo), web.get("/metrics", metrics_page)])
    return app


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build_app(args.heartbeat_s), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    sock = bind(args.host, args.port)
    await web.SockSite(runner, sock).start()
    announce(sock)
    await stop.wait()
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = build_parser("heartbeat", "aiohttp WebSocket echo with a short heartbeat.", {})
    parser.add_argument("--heartbeat-s", type=float, default=1.0, help="ping after this many quiet seconds")
    asyncio.run(serve(parse_args(parser, argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
