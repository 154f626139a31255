"""One observation of the server's resources, and how partial observations merge."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PHASE_BASELINE = "baseline"
PHASE_FLAPPING = "flapping"
PHASE_SETTLE = "settle"
PHASES = (PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE)

# TCP states that are no longer a resource of the server process: the kernel
# keeps TIME_WAIT on its own, LISTEN is the server's own accepting socket.
NOT_HELD_TCP_STATES = frozenset({"LISTEN", "TIME_WAIT"})


@dataclass(frozen=True)
class ResourceSample:
    """What a sampler saw of the server at one moment; None means "not known"."""

    t_s: float  # monotonic time of the sample, seconds
    alive: bool = True  # the watched process (tree) still exists
    pid: int | None = None  # pid of the watched root process, when known
    rss_bytes: int | None = None  # resident memory, summed over the process tree
    cpu_pct: float | None = None  # CPU use since the previous sample, % of one core, summed
    open_fds: int | None = None  # open file descriptors, summed over the tree
    threads: int | None = None  # OS threads, summed over the tree
    tcp_states: Mapping[str, int] | None = None  # server-side TCP sockets on its port, by state
    agents: int | None = None  # per-connection server objects, from the agents metric
    phase: str = PHASE_BASELINE  # which phase of the run the sample belongs to
    cycles_completed: int = 0  # flap cycles completed by all users when the sample was taken
    flap_round: int = 0  # the round of flapping and settle it belongs to (1, 2, ...); 0 before the first
    messages_lost: int | None = None  # stream messages lost so far, all users (None: no stream defined)

    @property
    def held_connections(self) -> int | None:
        """Server-side TCP connections the server process still holds (CLOSE_WAIT included)."""
        if self.tcp_states is None:
            return None
        return sum(n for state, n in self.tcp_states.items() if state not in NOT_HELD_TCP_STATES)


MIB = 1024 * 1024  # "MB" in this pack means MiB, like ps and top


@dataclass(frozen=True)
class ResourceMetric:
    """One resource level the pack tracks and shows; its name is a ResourceSample and a ResourceLevels attribute."""

    name: str  # e.g. "rss_bytes"
    value_of: Callable[[ResourceSample], int | None]  # the level in one sample, None when not known
    label: str  # how the web UI names it, e.g. "Memory (RSS)"
    scale: float = 1  # divisor from the sample's unit to the shown unit
    unit: str = ""  # the shown unit, e.g. "MB"


# The one table of resource levels: the timeline's medians, the web UI's rows.
RESOURCE_METRICS: tuple[ResourceMetric, ...] = (
    ResourceMetric("rss_bytes", lambda s: s.rss_bytes, "Memory (RSS)", MIB, "MB"),
    ResourceMetric("open_fds", lambda s: s.open_fds, "Open fds"),
    ResourceMetric("threads", lambda s: s.threads, "Threads"),
    ResourceMetric("held_connections", lambda s: s.held_connections, "Held connections"),
    ResourceMetric("agents", lambda s: s.agents, "Agents"),
)


MEASURED_FIELDS = ("pid", "rss_bytes", "cpu_pct", "open_fds", "threads", "tcp_states", "agents")


def merge_samples(primary: ResourceSample, secondary: ResourceSample) -> ResourceSample:
    """Fill what `primary` does not know from `secondary`; `alive` is false if either says so."""
    updates: dict[str, Any] = {
        name: getattr(secondary, name)
        for name in MEASURED_FIELDS
        if getattr(primary, name) is None and getattr(secondary, name) is not None
    }
    updates["alive"] = primary.alive and secondary.alive
    return dataclasses.replace(primary, **updates)


@dataclass
class SamplerError(Exception):
    """A sampler could not observe the server; `reason` is one line for the user."""

    reason: str
    fatal: bool = field(default=False)  # True when retrying cannot help (bad pid, bad URL)

    def __str__(self) -> str:
        return self.reason


class Sampler(Protocol):
    """Anything that can observe the server. `sample` blocks (run it off the event loop)."""

    def describe(self) -> str:
        """One line saying what is watched, e.g. "process tree of pid 123, port 8765"."""
        ...

    def sample(self, now_s: float) -> ResourceSample:
        """Observe once; raise SamplerError when the server cannot be observed."""
        ...
