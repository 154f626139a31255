"""Which server the monitor watches: the bundled one, a PID, a port, a metrics URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from monitors.process_sampler import ProcessTreeSampler
from monitors.prometheus_sampler import PrometheusSampler
from monitors.sample import Sampler, SamplerError
from pack.embedded import REFSERVER_AGENTS_METRIC, EmbeddedServer
from pack.options import PackConfig, is_loopback_host

# A server watched through its port (--server-port, or --host on this machine) that exits
# gets this long to listen again (a new pid: a restart, reported by server_alive) before
# the run stops with the server dead. A server watched by pid stops the run at once.
RESTART_GRACE_S = 5.0


@dataclass
class MonitorTargets:
    """The samplers of one run, and what the pack found out to build them."""

    samplers: list[Sampler] = field(default_factory=list)  # polled by the monitor, merged in order
    notes: list[str] = field(default_factory=list)  # one line each: what was chosen and why
    restart_grace_s: float = 0.0  # how long the server may be gone (restarting) before the run stops


def _host_port(host: str) -> int | None:
    parts = urlsplit(host)
    try:
        return parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        return None


def _listeners_note(sampler: ProcessTreeSampler, where: str) -> str:
    """Which processes listen on the port, and which one is watched with all its children."""
    if sampler.listeners <= 1:
        return f"the process listening on {where}"
    return (
        f"the {sampler.listeners} processes listening on {where}, "
        f"watched as one server: pid {sampler.pid} (their common ancestor) and all its children"
    )


def resolve(config: PackConfig, host: str | None, server: EmbeddedServer | None) -> MonitorTargets:
    """Build the samplers from the options; a bad PID, port or URL raises a fatal SamplerError."""
    found = MonitorTargets()
    port = config.monitor.server_port or (server.port if server else None) or (_host_port(host) if host else None)
    # Explicit options win over the bundled server and over the guess from --host.
    if config.monitor.server_pid is not None:
        found.samplers.append(ProcessTreeSampler.for_pid(config.monitor.server_pid, port))
    elif config.monitor.server_port is not None:
        sampler = ProcessTreeSampler.for_port(config.monitor.server_port)
        found.samplers.append(sampler)
        found.notes.append(_listeners_note(sampler, f"port {config.monitor.server_port}"))
        found.restart_grace_s = RESTART_GRACE_S
    elif server is not None:
        found.samplers.append(ProcessTreeSampler.for_pid(server.pid, server.port))
        found.notes.append("the bundled reference server")
    elif host and is_loopback_host(host) and port is not None:
        try:
            sampler = ProcessTreeSampler.for_port(port)
            found.samplers.append(sampler)
            found.notes.append(_listeners_note(sampler, f"port {port} of --host"))
            found.restart_grace_s = RESTART_GRACE_S
        except SamplerError:
            found.notes.append(f"no process found listening on port {port} of --host")
    if config.monitor.metrics_url:
        found.samplers.append(PrometheusSampler.probe(config.monitor.metrics_url, config.monitor.agents_metric or None))
    elif server is not None:
        found.samplers.append(PrometheusSampler.probe(server.metrics_url, REFSERVER_AGENTS_METRIC))
    return found
