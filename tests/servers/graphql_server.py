"""A GraphQL-over-WebSocket server: Strawberry on uvicorn at /graphql, subprotocol ``graphql-transport-ws`` only.

A client that does not offer ``graphql-transport-ws`` is closed with 4406 right after the 101.
The session's agent is created when ``connection_init`` is acknowledged and removed when the
connection ends. When APP_AUTH_TOKEN is set, the ``connection_init`` payload must carry it
(``{"token": T}``, ``{"authToken": T}`` or ``{"Authorization": "Bearer T"}``), else the server
closes with 4403 Forbidden. No ``connection_init`` within ``--init-timeout-ms`` closes with 4408.

Schema::

    type Query { hello: String! }
    type Subscription {
      hello: String!                                  # "world" once, then complete
      count(to: Int! = 3, intervalMs: Int! = 0): Int! # 1..to, then complete
      greetings(intervalMs: Int! = 500): String!      # "hello 1", "hello 2", ... until completed
    }

Faults (``--fault``, repeatable):

- ``leak-agents``: per-connection agents are kept after the socket goes away;
- ``leak-agents-on-drop``: kept only when the client vanished without a close frame;
- ``leak-memory``: each acknowledged connection leaves ``--leak-memory-kb`` KiB (default 128) behind;
- ``reject-init``: every ``connection_init`` is refused: close 4403 Forbidden.

Metrics at GET /metrics: ``app_agents_active``, ``app_connections_active``, ``app_connections_total``,
``process_*``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, Sequence
from datetime import timedelta
from typing import Any

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from tests.servers.common import (
    AGENT_FAULTS,
    AppMetrics,
    ConnectionEnd,
    SessionAgents,
    build_parser,
    parse_args,
    serve_uvicorn,
    token_accepted,
    with_metrics,
)

REJECT_INIT = "reject-init"
FAULTS = {**AGENT_FAULTS, REJECT_INIT: "refuse every connection_init: close 4403 Forbidden"}
PATH = "/graphql"


@strawberry.type
class Query:
    """The one query: GraphQL needs a Query type."""

    @strawberry.field
    def hello(self) -> str:
        """Always "world"."""
        return "world"


@strawberry.type
class Subscription:
    """Short and endless subscriptions."""

    @strawberry.subscription
    async def hello(self) -> AsyncGenerator[str, None]:
        """ "world" once, then the operation completes."""
        yield "world"

    @strawberry.subscription
    async def count(self, to: int = 3, interval_ms: int = 0) -> AsyncGenerator[int, None]:
        """1 to ``to``, ``interval_ms`` apart, then the operation completes."""
        for number in range(1, to + 1):
            if number > 1 and interval_ms:
                await asyncio.sleep(interval_ms / 1000)
            yield number

    @strawberry.subscription
    async def greetings(self, interval_ms: int = 500) -> AsyncGenerator[str, None]:
        """ "hello N" every ``interval_ms`` until the client completes the operation."""
        number = 0
        while True:
            number += 1
            yield f"hello {number}"
            await asyncio.sleep(interval_ms / 1000)


SCHEMA = strawberry.Schema(query=Query, subscription=Subscription)


def init_token(payload: object) -> object:
    """The token a ``connection_init`` payload carries, under any of the usual keys."""
    if not isinstance(payload, dict):
        return None
    for key in ("token", "authToken"):
        if key in payload:
            return payload[key]
    authorization = payload.get("Authorization", payload.get("authorization"))
    if isinstance(authorization, str) and authorization.lower().startswith("bearer "):
        return authorization[len("bearer ") :].strip()
    return None


class AgentGraphQL(GraphQL):
    """Strawberry's ASGI view with an agent per acknowledged connection, and the faults."""

    def __init__(self, agents: SessionAgents, faults: frozenset[str], auth_token: str | None, init_timeout_ms: int):
        super().__init__(
            SCHEMA,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(milliseconds=init_timeout_ms),
        )
        self.agents = agents  # one per acknowledged connection
        self.faults = faults  # the --fault names
        self.auth_token = auth_token  # required in connection_init when set

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        """At connection_init: refuse (4403) or create the connection's agent, freed when the socket ends."""
        if REJECT_INIT in self.faults or not token_accepted(
            self.auth_token, init_token(context.get("connection_params"))
        ):
            raise ConnectionRejectionError()
        websocket = context["request"]
        client = websocket.client
        agent = self.agents.open(f"{client.host}:{client.port}" if client else "?", PATH)
        ConnectionEnd.of(websocket.scope).callbacks.append(lambda dropped: self.agents.close(agent, dropped=dropped))
        return UNSET


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM."""
    description = "GraphQL over WebSocket (graphql-transport-ws), Strawberry on uvicorn."
    parser = build_parser("graphql_server", description, FAULTS)
    parser.add_argument(
        "--init-timeout-ms", type=int, default=10_000, help="close 4408 without connection_init by then (ms)"
    )
    args = parse_args(parser, argv)
    agents = SessionAgents(args.fault, args.leak_memory_kb)
    view = AgentGraphQL(agents, args.fault, args.auth_token, args.init_timeout_ms)
    app = Starlette(routes=[Route(PATH, view), WebSocketRoute(PATH, view)])
    return serve_uvicorn(with_metrics(app, AppMetrics(lambda: len(agents))), args)


if __name__ == "__main__":
    sys.exit(main())
