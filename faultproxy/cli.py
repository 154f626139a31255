"""Command-line parsing: turns argv into a ProxyConfig, refusing any address off this machine."""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from childproc.bind_address import is_loopback_host
from childproc.logs import add_log_level_option
from childproc.numbers import Number, cli_number
from childproc.parent_death import add_die_with_parent_option
from faultproxy.toxics import ToxicSettings

DEFAULT_LISTEN = "127.0.0.1:0"
# Exit code for a bad command line, argparse's own.
USAGE_EXIT_CODE = 2


@dataclass(frozen=True)
class ProxyConfig:
    """Everything a proxy process needs to know, parsed once."""

    listen_host: str  # loopback address to bind
    listen_port: int  # 0 picks an ephemeral port
    upstream_host: str  # loopback address of the server behind the proxy
    upstream_port: int  # its port
    toxics: ToxicSettings = field(default_factory=ToxicSettings)
    seed: int = 0  # roots every random stream; drawn at random and logged when not given
    log_level: str = "INFO"
    die_with_parent: bool = False  # ask the kernel to SIGTERM us when our parent dies


class AddressError(ValueError):
    """An address argument that is malformed or not on this machine."""


def parse_address(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[::1]:PORT`` for IPv6) into a loopback host and a port."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise AddressError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:{port_text}")
    try:
        port = int(port_text)
    except ValueError:
        raise AddressError(f"{text!r}: port {port_text!r} is not an integer") from None
    if not 0 <= port <= 65535:
        raise AddressError(f"{text!r}: port must be between 0 and 65535")
    if not is_loopback_host(host):
        # No name lookups beyond "localhost": a name could resolve anywhere.
        raise AddressError(f"{host!r} is not a loopback address; this pack only sends traffic to this machine")
    return host, port


def _number_in_range(low: float, high: float | None, kind: type[Number]) -> Callable[[str], Number]:
    return cli_number(kind, low, high, noun="a number")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m faultproxy``."""
    parser = argparse.ArgumentParser(
        prog="python -m faultproxy",
        description="TCP proxy on loopback that adds latency, a bandwidth limit and connection resets.",
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help="loopback address to bind (default %(default)s)"
    )
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT", help="loopback address of the server")
    parser.add_argument("--seed", type=int, help="seed of every random decision (default: drawn and logged)")
    add_log_level_option(parser)
    add_die_with_parent_option(parser)
    toxics = parser.add_argument_group("toxics (all off by default)")
    toxics.add_argument(
        "--latency-ms", type=_number_in_range(0, None, int), default=0, metavar="N", help="delay every chunk by N ms"
    )
    toxics.add_argument(
        "--jitter-ms",
        type=_number_in_range(0, None, int),
        default=0,
        metavar="N",
        help="vary the delay uniformly within latency ± N ms (floored at 0)",
    )
    toxics.add_argument(
        "--bandwidth-kbps",
        type=_number_in_range(0, None, int),
        default=0,
        metavar="N",
        help="limit each direction of each connection to N KiB/s (0 = unlimited)",
    )
    toxics.add_argument(
        "--reset-pct",
        type=_number_in_range(0, 100, float),
        default=0.0,
        metavar="P",
        help="reset P %% of connections (a seeded draw per connection)",
    )
    toxics.add_argument(
        "--reset-after-ms",
        type=_number_in_range(0, None, int),
        default=0,
        metavar="N",
        help="reset a chosen connection N ms after its first client bytes; 0 drops those bytes and resets at once",
    )
    return parser


def parse_config(argv: Sequence[str] | None) -> ProxyConfig:
    """Parse argv; exit 2 with usage on bad syntax, or with one line for an address off this machine."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        listen_host, listen_port = parse_address(args.listen)
        upstream_host, upstream_port = parse_address(args.upstream)
    except AddressError as exc:
        parser.exit(USAGE_EXIT_CODE, f"{parser.prog}: refused: {exc}\n")
    if upstream_port == 0:
        parser.exit(USAGE_EXIT_CODE, f"{parser.prog}: refused: upstream port 0 names no server\n")
    return ProxyConfig(
        listen_host=listen_host,
        listen_port=listen_port,
        upstream_host=upstream_host,
        upstream_port=upstream_port,
        toxics=ToxicSettings(
            latency_ms=int(args.latency_ms),
            jitter_ms=int(args.jitter_ms),
            bandwidth_kbps=int(args.bandwidth_kbps),
            reset_pct=float(args.reset_pct),
            reset_after_ms=int(args.reset_after_ms),
        ),
        seed=args.seed if args.seed is not None else secrets.randbits(32),
        log_level=args.log_level,
        die_with_parent=args.die_with_parent,
    )
