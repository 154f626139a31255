"""Command-line parsing: turns argv and the environment into a ServerConfig."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from childproc.logs import add_log_level_option, configure_logging
from childproc.numbers import cli_number
from childproc.parent_death import add_die_with_parent_option
from refserver.app_protocol import PROTOCOLS
from refserver.auth import AUTH_TOKEN_ENV
from refserver.faults import FaultModes
from refserver.mqtt_mode import MQTT_PROTOCOL
from refserver.socketio_mode import DEFAULT_PING_INTERVAL_MS, DEFAULT_PING_TIMEOUT_MS, SOCKETIO_PROTOCOL

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_STREAM_INTERVAL_MS = 20


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs to know, parsed once."""

    host: str = DEFAULT_HOST
    port: int = 0  # 0 picks an ephemeral port
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    workers: int = 1
    log_level: str = "INFO"
    die_with_parent: bool = False  # ask the kernel to SIGTERM us when our parent dies
    protocol: str = "echo"  # what a connection speaks: echo, app, socketio or mqtt (app_protocol.py, *_mode.py)
    ping_interval_ms: int = DEFAULT_PING_INTERVAL_MS  # socketio: the Engine.IO heartbeat period
    ping_timeout_ms: int = DEFAULT_PING_TIMEOUT_MS  # socketio: how long a ping waits for its pong
    stream_interval_ms: int = DEFAULT_STREAM_INTERVAL_MS  # app: time between two messages of every user's stream
    faults: FaultModes = field(default_factory=FaultModes)
    auth_token: str | None = field(default=None, repr=False)  # never in a repr, hence never in a log


def _int_in_range(low: int, high: int | None) -> Callable[[str], int]:
    return cli_number(int, low, high, noun="an integer")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m refserver``."""
    parser = argparse.ArgumentParser(
        prog="python -m refserver",
        description=(
            "Reference WebSocket echo server with optional, deliberate resource bugs. "
            f"Set {AUTH_TOKEN_ENV} in the environment to require a bearer token."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=_int_in_range(0, 65535), default=0, help="port to bind, 0 = ephemeral")
    parser.add_argument(
        "--max-message-bytes",
        type=_int_in_range(1, None),
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest incoming message; bigger ones close the connection with 1009 (default %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=_int_in_range(1, None),
        default=DEFAULT_MAX_CONNECTIONS,
        help="open connections per process beyond which handshakes get HTTP 503 (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_int_in_range(1, 1024),
        default=1,
        help="worker processes sharing the port with SO_REUSEPORT; metrics are per worker (default 1)",
    )
    add_log_level_option(parser)
    add_die_with_parent_option(parser)
    parser.add_argument(
        "--protocol",
        choices=(*PROTOCOLS, SOCKETIO_PROTOCOL, MQTT_PROTOCOL),
        default="echo",
        help=(
            "echo: echo every message (default); app: JSON agent chat with a greeting, ping/pong and an auth "
            "message that creates the session's agent; socketio: Socket.IO 5 over Engine.IO 4 (WebSocket only) "
            "at /socket.io/, an agent per namespace session; mqtt: MQTT 3.1.1/5.0 over WebSocket (subprotocol mqtt), "
            "an agent per session"
        ),
    )
    parser.add_argument(
        "--ping-interval-ms",
        type=_int_in_range(1, None),
        default=DEFAULT_PING_INTERVAL_MS,
        help="socketio: Engine.IO ping period (default %(default)s)",
    )
    parser.add_argument(
        "--ping-timeout-ms",
        type=_int_in_range(1, None),
        default=DEFAULT_PING_TIMEOUT_MS,
        help="socketio: how long a ping waits for its pong before the client is cut (default %(default)s)",
    )
    parser.add_argument(
        "--stream-interval-ms",
        type=_int_in_range(1, None),
        default=DEFAULT_STREAM_INTERVAL_MS,
        help="app: time between two messages of every user's stream (default %(default)s)",
    )
    faults = parser.add_argument_group("fault modes (real bugs, all off by default)")
    faults.add_argument(
        "--leak-memory-kb", type=_int_in_range(0, None), default=0, metavar="N", help="leak N KiB per connection"
    )
    faults.add_argument(
        "--leak-agents-on-drop",
        action="store_true",
        help="keep the agent of a client that vanished without a close frame",
    )
    faults.add_argument("--leak-fds", action="store_true", help="leak one file descriptor per connection")
    faults.add_argument("--ignore-pingreq", action="store_true", help="mqtt: answer no PINGREQ with a PINGRESP")
    faults.add_argument(
        "--reject-pct",
        type=_int_in_range(0, 100),
        default=0,
        metavar="P",
        help="answer exactly P of every 100 WebSocket handshakes with HTTP 503",
    )
    faults.add_argument(
        "--slow-handshake-ms",
        type=_int_in_range(0, None),
        default=0,
        metavar="N",
        help="delay every WebSocket handshake by N ms",
    )
    faults.add_argument(
        "--block-loop-ms",
        type=_int_in_range(0, None),
        default=0,
        metavar="N",
        help="block the event loop N ms per handshake (synchronous work): every connection waits",
    )
    faults.add_argument(
        "--lose-on-resume",
        action="store_true",
        help="app: a stream resumed after an offset replays only the newer half of what the client missed",
    )
    return parser


def parse_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ServerConfig:
    """Parse argv and the environment; exit 2 with a usage message on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    auth_token = environ.get(AUTH_TOKEN_ENV)
    if auth_token is not None and not auth_token.strip():
        # Fail closed: an empty token would be easy to mistake for "auth on".
        parser.error(f"{AUTH_TOKEN_ENV} is set but empty; unset it to disable auth")
    return ServerConfig(
        host=args.host,
        port=args.port,
        max_message_bytes=args.max_message_bytes,
        max_connections=args.max_connections,
        workers=args.workers,
        log_level=args.log_level,
        die_with_parent=args.die_with_parent,
        protocol=args.protocol,
        ping_interval_ms=args.ping_interval_ms,
        ping_timeout_ms=args.ping_timeout_ms,
        stream_interval_ms=args.stream_interval_ms,
        faults=FaultModes(
            leak_memory_kb=args.leak_memory_kb,
            leak_agents_on_drop=args.leak_agents_on_drop,
            leak_fds=args.leak_fds,
            reject_pct=args.reject_pct,
            slow_handshake_ms=args.slow_handshake_ms,
            block_loop_ms=args.block_loop_ms,
            lose_on_resume=args.lose_on_resume,
            ignore_pingreq=args.ignore_pingreq,
        ),
        auth_token=auth_token,
    )


def configure_server_logging(level: str) -> None:
    """Log to stderr; keep websockets' own logger quiet since its DEBUG output prints request headers."""
    # Its DEBUG lines include the Authorization header and the query string with the token.
    configure_logging(level, quiet_loggers=("websockets",))
