"""Network conditions: the TCP fault proxy the pack puts between clients and the server.

Off unless a --net-* option is set. The proxy is its own process on loopback (like the
bundled server); the users connect through it, the monitor still watches the server.
"""

from __future__ import annotations

import atexit
from urllib.parse import urlsplit, urlunsplit

from faultproxy.launch import RunningFaultProxy, start_faultproxy
from faultproxy.toxics import ToxicSettings
from pack.options import OptionError, PackConfig, is_loopback_host


class NetworkConditionsError(Exception):
    """The proxy could not be started; the message is one line."""


def wanted(config: PackConfig) -> bool:
    """True when any network condition is asked for."""
    return bool(config.network.latency_ms or config.network.bandwidth_kbps or config.network.reset_pct)


def toxic_settings(config: PackConfig) -> ToxicSettings:
    """The proxy's toxics for the --net-* options (the proxy takes whole milliseconds and KiB/s)."""
    return ToxicSettings(
        latency_ms=int(config.network.latency_ms),
        jitter_ms=int(config.network.jitter_ms),
        bandwidth_kbps=int(config.network.bandwidth_kbps),
        reset_pct=config.network.reset_pct,
        reset_after_ms=int(config.network.reset_after_ms),
    )


def start(config: PackConfig, host: str) -> tuple[RunningFaultProxy, str]:
    """Start the proxy in front of `host`; return it and the URL the users should use instead."""
    if not is_loopback_host(host):
        raise OptionError("--net-*: network conditions need a server on this machine (127.0.0.0/8, ::1, localhost)")
    parts = urlsplit(host)
    upstream_port = parts.port or (443 if parts.scheme == "wss" else 80)
    upstream_host = parts.hostname or "127.0.0.1"
    try:
        proxy = start_faultproxy(
            upstream_host, upstream_port, toxics=toxic_settings(config), seed=config.flap.timing.seed
        )
    except Exception as error:  # any failure to start is a configuration problem for the user
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise NetworkConditionsError(f"the fault proxy did not start: {lines[-1] if lines else error}") from None
    atexit.register(proxy.stop)
    netloc = f"127.0.0.1:{proxy.port}"
    return proxy, urlunsplit(parts._replace(netloc=netloc))


def describe(config: PackConfig) -> str:
    """One line for the log."""
    conditions = []
    if config.network.latency_ms:
        conditions.append(f"latency {config.network.latency_ms:g} ± {config.network.jitter_ms:g} ms")
    if config.network.bandwidth_kbps:
        conditions.append(f"bandwidth {config.network.bandwidth_kbps:g} KiB/s")
    if config.network.reset_pct:
        conditions.append(f"resets on {config.network.reset_pct:g}% of connections")
    return ", ".join(conditions)
