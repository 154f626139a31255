"""The load generator watches itself: its open fds and the machine's ephemeral ports.

A generator that runs out of file descriptors or local ports fails connects that say
nothing about the server. `GeneratorHealth` keeps the peaks and says, with advice,
when the generator came close to a limit. Reading is cheap (/proc, no socket scan).
"""

from __future__ import annotations

import errno
import os
import resource
from dataclasses import asdict, dataclass

NEAR_LIMIT = 0.8  # warn above this share of a limit


@dataclass(frozen=True)
class GeneratorSample:
    """One look at this process and the machine's TCP state."""

    open_fds: int  # this process's open file descriptors
    fd_limit: int | None  # its soft RLIMIT_NOFILE
    time_wait: int | None  # TCP sockets in TIME_WAIT on the machine (they pin local ports)
    port_range: int | None  # size of net.ipv4.ip_local_port_range


def _read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return None


def sample_generator() -> GeneratorSample:
    """Read this process's fds and the machine's port state."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        open_fds = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own descriptor
    except OSError as error:
        # Listing needs a descriptor too: with none left, the process is at its limit.
        open_fds = soft if error.errno == errno.EMFILE and soft != resource.RLIM_INFINITY else 0
    time_wait = None
    sockstat = _read("/proc/net/sockstat") or ""
    for line in sockstat.splitlines():
        if line.startswith("TCP:"):
            words = line.split()
            if "tw" in words:
                time_wait = int(words[words.index("tw") + 1])
    port_range = None
    ports = (_read("/proc/sys/net/ipv4/ip_local_port_range") or "").split()
    if len(ports) == 2:
        port_range = int(ports[1]) - int(ports[0]) + 1
    return GeneratorSample(
        open_fds=open_fds,
        fd_limit=soft if soft != resource.RLIM_INFINITY else None,
        time_wait=time_wait,
        port_range=port_range,
    )


@dataclass
class GeneratorHealth:
    """Peaks of the generator's own use, over one process or several (workers)."""

    peak_open_fds: int = 0  # highest open fds seen in any one process
    fd_limit: int | None = None  # the lowest fd limit among the processes
    peak_time_wait: int = 0  # highest TIME_WAIT count seen on the machine
    port_range: int | None = None  # ephemeral ports available per destination
    samples: int = 0  # how many looks were taken

    def add(self, sample: GeneratorSample) -> None:
        """Fold one sample into the peaks."""
        self.samples += 1
        self.peak_open_fds = max(self.peak_open_fds, sample.open_fds)
        if sample.fd_limit is not None:
            self.fd_limit = sample.fd_limit if self.fd_limit is None else min(self.fd_limit, sample.fd_limit)
        if sample.time_wait is not None:
            self.peak_time_wait = max(self.peak_time_wait, sample.time_wait)
        if sample.port_range is not None:
            self.port_range = sample.port_range

    def merged(self, other: GeneratorHealth) -> GeneratorHealth:
        """Peaks over both (e.g. master and workers)."""
        limits = [x for x in (self.fd_limit, other.fd_limit) if x is not None]
        return GeneratorHealth(
            peak_open_fds=max(self.peak_open_fds, other.peak_open_fds),
            fd_limit=min(limits) if limits else None,
            peak_time_wait=max(self.peak_time_wait, other.peak_time_wait),
            port_range=self.port_range or other.port_range,
            samples=self.samples + other.samples,
        )

    def warnings(self) -> list[str]:
        """Sentences, with advice, for each limit the generator came near."""
        found = []
        if self.fd_limit and self.peak_open_fds >= NEAR_LIMIT * self.fd_limit:
            found.append(
                f"load generator used {self.peak_open_fds} of its {self.fd_limit} file descriptors: "
                "raise `ulimit -n` or spread users over more --processes"
            )
        if self.port_range and self.peak_time_wait >= NEAR_LIMIT * self.port_range:
            found.append(
                f"{self.peak_time_wait} TCP sockets in TIME_WAIT against {self.port_range} ephemeral ports: "
                "connects may fail for lack of local ports; widen net.ipv4.ip_local_port_range, "
                "lower the cycle rate or use more source addresses"
            )
        return found

    def to_dict(self) -> dict[str, object]:
        """JSON- and message-friendly form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GeneratorHealth:
        """The inverse of `to_dict`."""
        return cls(**data)  # type: ignore[arg-type]
