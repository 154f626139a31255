"""The pack's settings: one pure, typed settings type per concern, held by `PackConfig`.

`pack.options` fills them once from the command line (or the web UI); every room of the
pack reads the part it needs. The defaults here are the options' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitors.checks import Thresholds
from scenarios.phase_plan import PhaseSettings
from scenarios.settings import ClientSettings, FlapSettings, SteadySettings


@dataclass(frozen=True)
class RefServerSettings:
    """The bundled reference server, started when --host is not given."""

    protocol: str = "echo"  # what it speaks (one of REF_SERVER_PROTOCOLS)
    faults: tuple[str, ...] = ()  # its fault modes


@dataclass(frozen=True)
class MonitorSettings:
    """What the side monitor watches, and how often."""

    server_pid: int | None = None  # watch this process tree
    server_port: int | None = None  # watch the process listening here
    metrics_url: str = ""  # scrape this Prometheus endpoint
    agents_metric: str = ""  # the agents gauge at that endpoint
    interval_s: float = 0.5  # sampling period


@dataclass(frozen=True)
class NetworkSettings:
    """Network conditions through the fault proxy (all zero: no proxy)."""

    latency_ms: float = 0.0  # added latency per direction
    jitter_ms: float = 0.0  # latency jitter
    bandwidth_kbps: float = 0.0  # bandwidth per direction, KiB/s
    reset_pct: float = 0.0  # share of connections reset
    reset_after_ms: float = 0.0  # when a chosen connection is reset


@dataclass(frozen=True)
class OutputSettings:
    """The files a run writes (empty: not written)."""

    verdict_json: str = ""  # the verdict as JSON
    junit_xml: str = ""  # the verdict for CI systems
    resource_csv: str = ""  # the resource timeline

    def paths(self) -> tuple[tuple[str, str], ...]:
        """(option, path) of each file asked for."""
        named = (("--verdict-json", self.verdict_json), ("--junit-xml", self.junit_xml))
        return tuple((flag, path) for flag, path in (*named, ("--resource-csv", self.resource_csv)) if path)


@dataclass(frozen=True)
class PackConfig:
    """Everything the pack was told, validated and typed: one settings type per concern."""

    flap: FlapSettings = field(default_factory=FlapSettings)  # what each flapping user does
    client: ClientSettings = field(default_factory=ClientSettings)  # how connections are made, what they say
    phases: PhaseSettings = field(default_factory=PhaseSettings)  # baseline, settle, rounds
    steady: SteadySettings = field(default_factory=SteadySettings)  # long-lived connections beside the flapping
    ref_server: RefServerSettings = field(default_factory=RefServerSettings)  # the bundled server
    monitor: MonitorSettings = field(default_factory=MonitorSettings)  # what the monitor watches
    network: NetworkSettings = field(default_factory=NetworkSettings)  # the fault proxy's conditions
    outputs: OutputSettings = field(default_factory=OutputSettings)  # the files written
    recovery_timeout_s: float = 10.0  # the recovery probe's deadline
    thresholds: Thresholds = field(default_factory=Thresholds)  # the verdict's limits
