"""When a settle is over: wait while the server is still giving back, stop once every series is flat.

After each flap round the clients are gone, but a server frees what they held on its own
clocks (a reaper that drops a vanished client after 45 s, a gauge that is refreshed every
5 s). The checks judge the levels at the end of the settle, so the settle lasts at least
`--settle-s`, goes on while a judged series is still falling toward its baseline, and ends
when each has been flat for its window: at least 2 s and at least two refreshes of the
series' source. `--settle-max-s` caps it; a series still falling then is named.

A series flat above its baseline ends the settle too: waiting cannot bring it down, and
the checks judge it as a leak.

Pure code: samples and times in, a decision out. No clock, no sockets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .rounds import ALLOCATOR_NOISE_MB
from .sample import ResourceSample
from .timeline import ResourceLevels

MIB = 1024 * 1024

# The series the checks judge after a settle, as ResourceSample / ResourceLevels attributes.
SETTLE_SERIES = ("rss_bytes", "open_fds", "threads", "held_connections", "agents")

# How each series is named in a sentence.
SERIES_WORDS = {
    "rss_bytes": "memory",
    "open_fds": "open fds",
    "threads": "threads",
    "held_connections": "held connections",
    "agents": "agents",
}

# What a series may wobble by and still count as flat. Memory: the allocator noise the rounds
# rule forgives. File descriptors and threads: one, as a scrape's socket or a pool's worker
# comes and goes. Held connections and agents: none, their checks forgive none by default.
DEFAULT_TOLERANCES: Mapping[str, float] = {
    "rss_bytes": ALLOCATOR_NOISE_MB * MIB,
    "open_fds": 1.0,
    "threads": 1.0,
    "held_connections": 0.0,
    "agents": 0.0,
}

MIN_FLAT_S = 2.0  # the shortest window a series must be flat for
FLAT_REFRESHES = 2  # ... and at least this many refreshes of its source

# How each series is read from a sample.
SERIES_READERS: Mapping[str, Callable[[ResourceSample], int | None]] = {
    "rss_bytes": lambda s: s.rss_bytes,
    "open_fds": lambda s: s.open_fds,
    "threads": lambda s: s.threads,
    "held_connections": lambda s: s.held_connections,
    "agents": lambda s: s.agents,
}


def fmt_seconds(value: float) -> str:
    """`9.5 s`, `60 s`: one decimal at most, trailing zeros dropped."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{'0' if text == '-0' else text} s"


def fmt_level(series: str, value: float) -> str:
    """A level as the checks print it: memory in MB (`512.3 MB`), counts as numbers (`184`)."""
    if series == "rss_bytes":
        return f"{f'{value / MIB:.1f}'.rstrip('0').rstrip('.')} MB"
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def still_falling_words(series: str, levels: tuple[float, float], max_s: float) -> str:
    """`agents still falling at --settle-max-s 60 s: 184 → 12`."""
    start, end = levels
    return (
        f"{SERIES_WORDS.get(series, series)} still falling at --settle-max-s {fmt_seconds(max_s)}:"
        f" {fmt_level(series, start)} → {fmt_level(series, end)}"
    )


@dataclass(frozen=True)
class SettleDecision:
    """Whether the settle is over, and the sentence that says why (or what it still waits for)."""

    done: bool
    reason: str  # `settled after 9.5 s: agents flat for 2 refreshes (5 s)`; while waiting, what it waits for
    elapsed_s: float  # seconds since the settle began
    capped: bool = False  # ended by --settle-max-s
    still_falling: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # series -> (first, last) level
    waiting_for: tuple[str, ...] = ()  # series that keep the settle going (empty once done)

    def outcome(self, flap_round: int, max_s: float) -> SettleOutcome:
        """What the verdict reports of this (final) decision for round `flap_round`."""
        return SettleOutcome(
            flap_round=flap_round,
            duration_s=self.elapsed_s,
            reason=self.reason,
            capped=self.capped,
            max_s=max_s,
            still_falling=dict(self.still_falling),
        )


@dataclass(frozen=True)
class SettleOutcome:
    """How one round's settle ended, for the verdict: its length, its reason, what was still falling."""

    flap_round: int  # the round the settle followed (1, 2, ...)
    duration_s: float  # how long the settle lasted
    reason: str  # the sentence of the final SettleDecision
    capped: bool = False  # ended by --settle-max-s
    max_s: float = 0.0  # the --settle-max-s of the run, for the still-falling words
    still_falling: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # series -> (first, last)

    def still_falling_words(self, series: str) -> str | None:
        """`agents still falling at --settle-max-s 60 s: 184 → 12`, or None when that series was not."""
        levels = self.still_falling.get(series)
        return None if levels is None else still_falling_words(series, levels, self.max_s)


@dataclass
class _Series:
    """One series' points since the settle began."""

    baseline: float | None  # its level before any client connected
    points: list[tuple[float, float]] = field(default_factory=list)  # (t_s, value), oldest first


@dataclass(frozen=True)
class _State:
    """Where one series stands at a decision."""

    settled: bool  # flat for its window, not falling toward its baseline, or at its baseline
    falling: bool  # fell by more than its tolerance over its window, toward its baseline
    why: str  # `agents flat for 2 refreshes (10 s)`, `agents back at baseline (0)`, or what it waits for


class SettleWatch:
    """Decides when one settle is over, from the samples taken since it began.

    Feed every sample with `add` (phase and round are not read: the caller knows they are
    this settle's), ask `decision(now)` as often as wanted; `start` begins the next settle.
    """

    def __init__(
        self,
        min_s: float,
        max_s: float,
        refresh_s: Mapping[str, float] | None = None,
        tolerances: Mapping[str, float] | None = None,
        min_flat_s: float = MIN_FLAT_S,
    ) -> None:
        if not (math.isfinite(min_s) and min_s >= 0):
            raise ValueError(f"min_s must be a finite number >= 0, got {min_s!r}")
        self.min_s = min_s  # --settle-s: the settle never ends sooner
        self.max_s = max(min_s, max_s)  # --settle-max-s: it never lasts longer
        self.refresh_s = dict(refresh_s or {})  # series -> how often its source refreshes it, seconds
        self.tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}  # series -> wobble that is still flat
        self.min_flat_s = min_flat_s  # shortest flat window
        self._start_t_s: float | None = None  # when this settle began
        self._series: dict[str, _Series] = {}  # the settle's points, by series
        self._baseline: ResourceLevels | None = None  # levels the series fall toward
        self._waiting: tuple[str, ...] = ()  # series the latest decision that waited waited for
        self._waited_until_s = 0.0  # elapsed seconds of that decision

    def start(self, t_s: float, baseline: ResourceLevels | None = None) -> None:
        """Begin a settle at `t_s`; `baseline` holds the levels the series fall back toward."""
        self._start_t_s = t_s
        self._baseline = baseline
        self._series = {}
        self._waiting = ()
        self._waited_until_s = 0.0

    def add(self, sample: ResourceSample) -> None:
        """One more sample of this settle (samples taken before `start` are ignored)."""
        if self._start_t_s is None or sample.t_s < self._start_t_s or not sample.alive:
            return
        for name in SETTLE_SERIES:
            value = SERIES_READERS[name](sample)
            if value is None:
                continue
            series = self._series.get(name)
            if series is None:
                baseline = None if self._baseline is None else getattr(self._baseline, name)
                series = self._series[name] = _Series(baseline)
            series.points.append((sample.t_s, float(value)))

    def window_s(self, name: str) -> float:
        """How long `name` must stay flat: at least MIN_FLAT_S and two refreshes of its source."""
        return max(self.min_flat_s, FLAT_REFRESHES * self.refresh_s.get(name, 0.0))

    def _flat_words(self, name: str) -> str:
        """`agents flat for 2 refreshes (10 s)`, or `open fds flat for 2 s` when the minimum window rules."""
        window = self.window_s(name)
        word = SERIES_WORDS[name]
        if FLAT_REFRESHES * self.refresh_s.get(name, 0.0) >= self.min_flat_s:
            return f"{word} flat for {FLAT_REFRESHES} refreshes ({fmt_seconds(window)})"
        return f"{word} flat for {fmt_seconds(window)}"

    def _state(self, name: str, series: _Series) -> _State:
        """Whether `name` still keeps the settle going.

        Settled: back at its baseline after being seen above it in this settle (a fresh
        value), or flat within its tolerance for its whole window (a gauge that sat at its
        baseline from the start may be a stale cache: it too must stay put for its window).
        A series that moved within its window (fell, or rose as a cached gauge caught up)
        keeps the settle going.
        """
        assert self._start_t_s is not None
        tolerance = self.tolerances.get(name, 0.0)
        points = series.points
        last_t, last = points[-1]
        word = SERIES_WORDS[name]
        window = self.window_s(name)
        window_start_t = last_t - window
        covered = window_start_t >= self._start_t_s
        # The level the series held when its window began (the last point at or before it), and since.
        at_window_start = next((v for t, v in reversed(points) if t <= window_start_t), points[0][1])
        in_window = [at_window_start, *(v for t, v in points if t > window_start_t)]
        moved = max(abs(v - last) for v in in_window) > tolerance
        baseline = series.baseline
        if baseline is not None and abs(last - baseline) <= tolerance:
            came_down = any(v - baseline > tolerance for _, v in points)
            if came_down or (covered and not moved):
                return _State(True, False, f"{word} back at baseline ({fmt_level(name, baseline)})")
        toward = baseline is None or last > baseline
        levels = f"{fmt_level(name, points[0][1])} → {fmt_level(name, last)}"
        if toward and at_window_start - last > tolerance:
            return _State(False, True, f"{word} still falling ({levels})")
        if moved:
            return _State(False, False, f"{word} still changing ({levels})")
        if not covered:
            return _State(False, False, f"{word} not yet {self._flat_words(name).removeprefix(word + ' ')}")
        return _State(True, False, self._flat_words(name))

    def decision(self, t_s: float) -> SettleDecision:
        """Whether the settle is over at `t_s`, and why (or what it still waits for)."""
        if self._start_t_s is None:
            raise RuntimeError("SettleWatch.decision before start")
        elapsed = max(0.0, t_s - self._start_t_s)
        states = {name: self._state(name, series) for name, series in self._series.items()}
        waiting = tuple(name for name in SETTLE_SERIES if name in states and not states[name].settled)
        capped = elapsed >= self.max_s
        if waiting and not capped or elapsed < self.min_s:
            if waiting:
                self._waiting, self._waited_until_s = waiting, elapsed
            reason = "; ".join(states[name].why for name in waiting) or f"--settle-s {fmt_seconds(self.min_s)}"
            return SettleDecision(False, f"waiting: {reason}", elapsed, waiting_for=waiting)
        after = fmt_seconds(elapsed)
        if waiting:  # capped
            falling = {
                name: (self._series[name].points[0][1], self._series[name].points[-1][1])
                for name in waiting
                if states[name].falling
            }
            reason = f"stopped at --settle-max-s {fmt_seconds(self.max_s)}: " + "; ".join(
                states[name].why for name in waiting
            )
            return SettleDecision(True, reason, elapsed, capped=True, still_falling=falling)
        if not states:
            return SettleDecision(True, f"settled after {after}: no server samples to wait for", elapsed)
        last_waited = [name for name in self._waiting if name in states]
        if not last_waited or self._waited_until_s < self.min_s:
            reason = f"settled after {after}: --settle-s {fmt_seconds(self.min_s)} passed and nothing was still falling"
            return SettleDecision(True, reason, elapsed)
        return SettleDecision(True, f"settled after {after}: {states[last_waited[-1]].why}", elapsed)
