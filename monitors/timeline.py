"""The run's samples in order, and the resource levels the checks compare."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from .sample import (
    NOT_HELD_TCP_STATES,
    PHASE_BASELINE,
    PHASE_FLAPPING,
    PHASE_SETTLE,
    PHASES,
    RESOURCE_METRICS,
    ResourceSample,
)

SOURCE_NONE = "none"  # ResourceLevels.source when no sample could be used

_Metric = Callable[[ResourceSample], int | None]
# Each resource level by name, from the one table in sample.py.
_VALUE_OF: dict[str, _Metric] = {metric.name: metric.value_of for metric in RESOURCE_METRICS}


@dataclass(frozen=True)
class ResourceLevels:
    """The server's resource levels in one phase; None means the metric was never observed."""

    source: str  # phase the levels were taken from: baseline, settle, flapping, or "none"
    sample_count: int  # samples of that phase
    rss_bytes: float | None = None
    open_fds: float | None = None
    threads: float | None = None
    held_connections: float | None = None
    agents: float | None = None
    held_tcp_states: Mapping[str, int] | None = None  # held sockets by state, last known sample


def _known(samples: Sequence[ResourceSample], metric: _Metric) -> list[int]:
    """The metric's known values, in sample order."""
    return [v for v in (metric(s) for s in samples) if v is not None]


def _median(values: Sequence[int]) -> float | None:
    """Median, or None for no values."""
    return float(statistics.median(values)) if values else None


def _last(values: Sequence[int]) -> float | None:
    """Last value, or None for no values."""
    return float(values[-1]) if values else None


def _median_of_last_half(values: Sequence[int]) -> float | None:
    """Median of the last half (at least one) of the values: the level once things calmed down."""
    if not values:
        return None
    return float(statistics.median(values[-((len(values) + 1) // 2) :]))


def _held_tcp_states(samples: Sequence[ResourceSample]) -> Mapping[str, int] | None:
    """Held sockets by state (LISTEN and TIME_WAIT left out) of the last sample that knew them."""
    for sample in reversed(samples):
        if sample.tcp_states is not None:
            return {
                state: n for state, n in sorted(sample.tcp_states.items()) if state not in NOT_HELD_TCP_STATES and n > 0
            }
    return None


class Timeline:
    """The run's samples in the order the monitor took them; append-only."""

    def __init__(self, samples: Iterable[ResourceSample] = ()) -> None:
        self._samples: list[ResourceSample] = list(samples)  # in time order

    def append(self, sample: ResourceSample) -> None:
        """Add the newest sample."""
        self._samples.append(sample)

    @property
    def samples(self) -> tuple[ResourceSample, ...]:
        """All samples, oldest first (a snapshot)."""
        return tuple(self._samples)

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[ResourceSample]:
        return iter(tuple(self._samples))

    @property
    def start_t_s(self) -> float | None:
        """Monotonic time of the first sample, or None when there is none."""
        return self._samples[0].t_s if self._samples else None

    def relative_t_s(self, sample: ResourceSample) -> float:
        """Seconds from the first sample to `sample`."""
        start = self.start_t_s
        return sample.t_s - (sample.t_s if start is None else start)

    def in_phase(self, phase: str) -> list[ResourceSample]:
        """The samples tagged with `phase`, oldest first."""
        return [s for s in self._samples if s.phase == phase]

    def count_by_phase(self) -> dict[str, int]:
        """Samples per phase; every known phase is present, unknown tags are counted too."""
        counts = {phase: 0 for phase in PHASES}
        for sample in self._samples:
            counts[sample.phase] = counts.get(sample.phase, 0) + 1
        return counts

    def baseline(self) -> ResourceLevels:
        """Per-metric medians of the baseline samples (before any client connected)."""
        samples = self.in_phase(PHASE_BASELINE)
        return ResourceLevels(
            source=PHASE_BASELINE if samples else SOURCE_NONE,
            sample_count=len(samples),
            rss_bytes=_median(_known(samples, _VALUE_OF["rss_bytes"])),
            open_fds=_median(_known(samples, _VALUE_OF["open_fds"])),
            threads=_median(_known(samples, _VALUE_OF["threads"])),
            held_connections=_median(_known(samples, _VALUE_OF["held_connections"])),
            agents=_median(_known(samples, _VALUE_OF["agents"])),
            held_tcp_states=_held_tcp_states(samples),
        )

    def settled_rounds(self) -> list[int]:
        """The rounds with settle samples, in order (0 for settle samples without a round)."""
        return sorted({s.flap_round for s in self._samples if s.phase == PHASE_SETTLE})

    def round_cycles(self, flap_round: int) -> int:
        """Flap cycles completed in `flap_round`: the count at its last sample minus the count before it."""
        before = [s.cycles_completed for s in self._samples if s.flap_round < flap_round]
        during = [s.cycles_completed for s in self._samples if s.flap_round == flap_round]
        if not during:
            return 0
        return max(during) - max(before, default=0)

    def settled(self, flap_round: int | None = None) -> ResourceLevels:
        """Levels at the end of a settle phase, after all clients left: the last round's, or `flap_round`'s.

        Memory (and threads, which pools shrink slowly) is the median of the last
        half of the settle samples, because RSS is noisy. File descriptors, held
        connections and agents take the last known value: by the end of settling
        the server should have released them all, so what is left is what leaked.
        Without settle samples the same rules run on the flapping samples, and
        `source` is "flapping" so the checks can say there was no settle phase.
        """
        source = PHASE_SETTLE
        rounds = self.settled_rounds()
        if flap_round is None and rounds:
            flap_round = rounds[-1]
        samples = [s for s in self.in_phase(PHASE_SETTLE) if flap_round is None or s.flap_round == flap_round]
        if not samples:
            source = PHASE_FLAPPING
            samples = self.in_phase(PHASE_FLAPPING)
        if not samples:
            return ResourceLevels(source=SOURCE_NONE, sample_count=0)
        return ResourceLevels(
            source=source,
            sample_count=len(samples),
            rss_bytes=_median_of_last_half(_known(samples, _VALUE_OF["rss_bytes"])),
            open_fds=_last(_known(samples, _VALUE_OF["open_fds"])),
            threads=_median_of_last_half(_known(samples, _VALUE_OF["threads"])),
            held_connections=_last(_known(samples, _VALUE_OF["held_connections"])),
            agents=_last(_known(samples, _VALUE_OF["agents"])),
            held_tcp_states=_held_tcp_states(samples),
        )

    def first_death(self) -> ResourceSample | None:
        """The first sample that saw the server gone (process exited or metrics unreachable)."""
        return next((s for s in self._samples if not s.alive), None)

    def pid_change(self) -> tuple[int, int] | None:
        """The first (old, new) pair of known pids that differ between samples, or None."""
        previous: int | None = None
        for sample in self._samples:
            if sample.pid is None:
                continue
            if previous is not None and sample.pid != previous:
                return previous, sample.pid
            previous = sample.pid
        return None

    def restarted(self) -> bool:
        """Whether the server's pid changed during the run."""
        return self.pid_change() is not None

    def knows_pid(self) -> bool:
        """Whether any sample knew the server's pid (a process monitor ran)."""
        return any(s.pid is not None for s in self._samples)

    def has_observations(self) -> bool:
        """Whether any sample observed the server at all (a measured value, or it being gone)."""
        return any(
            not s.alive
            or s.pid is not None
            or s.cpu_pct is not None
            or s.tcp_states is not None
            or any(metric(s) is not None for metric in _VALUE_OF.values())
            for s in self._samples
        )
