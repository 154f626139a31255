"""The toxics' decisions, modelled on Toxiproxy: pure code with no sockets and no clock.

Callers pass the current time (seconds on any monotonic clock) and a
``random.Random``; nothing here sleeps. The proxy turns the answers into waits.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

KIB = 1024
# Bandwidth-limited data leaves in slices of this much transfer time, like Toxiproxy's 100 ms pieces.
BANDWIDTH_SLICE_S = 0.1


@dataclass(frozen=True)
class ToxicSettings:
    """Every toxic of one proxy; the default instance is a plain pass-through."""

    latency_ms: int = 0  # delay added to every chunk, both directions
    jitter_ms: int = 0  # the delay varies uniformly within latency ± jitter, floored at 0
    bandwidth_kbps: int = 0  # KiB per second per direction, 0 = unlimited
    reset_pct: float = 0.0  # share of connections that get reset, 0-100
    reset_after_ms: int = 0  # time from a chosen connection's first client bytes to its reset

    def arguments(self) -> list[str]:
        """The command-line flags that set these toxics; toxics left at 0 are left out."""
        flags = []
        for flag, value in (
            ("--latency-ms", self.latency_ms),
            ("--jitter-ms", self.jitter_ms),
            ("--bandwidth-kbps", self.bandwidth_kbps),
            ("--reset-pct", self.reset_pct),
            ("--reset-after-ms", self.reset_after_ms),
        ):
            if value:
                flags += [flag, str(value)]
        return flags

    def describe(self) -> list[str]:
        """Name each enabled toxic as its command-line flags, for the start log."""
        enabled = []
        if self.latency_ms or self.jitter_ms:
            enabled.append(f"--latency-ms {self.latency_ms} --jitter-ms {self.jitter_ms}")
        if self.bandwidth_kbps:
            enabled.append(f"--bandwidth-kbps {self.bandwidth_kbps}")
        if self.reset_pct:
            enabled.append(f"--reset-pct {self.reset_pct:g} --reset-after-ms {self.reset_after_ms}")
        return enabled


def derive_rng(seed: int, *stream: object) -> random.Random:
    """Return a generator of its own for one stream of decisions, e.g. ``("jitter", 7, "upstream")``.

    Separate streams keep each sequence reproducible whatever the traffic
    interleaving: connection 7's jitter never shifts connection 8's reset decision.
    """
    # A str seed is hashed with SHA-512 by random.seed, so it is stable across runs and versions.
    return random.Random("/".join(str(part) for part in (seed, *stream)))


def latency_delay_s(latency_ms: int, jitter_ms: int, rng: random.Random) -> float:
    """Draw one chunk's delay: ``latency ± jitter`` uniformly, never negative (Toxiproxy's latency toxic)."""
    if jitter_ms <= 0:
        return max(0.0, latency_ms / 1000)
    return max(0.0, (latency_ms + rng.uniform(-jitter_ms, jitter_ms)) / 1000)


class DirectionSchedule:
    """Release times for the chunks of one direction of one connection: latency, then bandwidth.

    Release times never decrease, so writing slices in arrival order at their
    release times keeps the byte stream in order even when jitter draws a
    shorter delay for a later chunk (it then waits for the earlier one, as a
    FIFO link would).
    """

    def __init__(self, settings: ToxicSettings, rng: random.Random) -> None:
        self._latency_ms = settings.latency_ms  # base delay per chunk
        self._jitter_ms = settings.jitter_ms  # spread of the delay
        self._bytes_per_s = settings.bandwidth_kbps * KIB  # 0 = unlimited
        self._rng = rng  # jitter draws
        self._last_release = -math.inf  # release time of the previous slice; order is kept by never going below it
        self._link_free_at = -math.inf  # when the simulated link has sent everything queued so far

    @property
    def is_pass_through(self) -> bool:
        """Tell whether every chunk leaves whole, at once."""
        return self._latency_ms <= 0 and self._jitter_ms <= 0 and self._bytes_per_s <= 0

    def slice_bytes(self) -> int:
        """Largest slice of a bandwidth-limited chunk: 100 ms of transfer, at least 1 byte."""
        return max(1, int(self._bytes_per_s * BANDWIDTH_SLICE_S))

    def schedule(self, now: float, size: int) -> list[tuple[float, int]]:
        """Split a chunk of ``size`` bytes read at ``now`` into ``(release time, length)`` slices."""
        if size <= 0:
            return []
        due = now + latency_delay_s(self._latency_ms, self._jitter_ms, self._rng)
        due = max(due, self._last_release)
        if self._bytes_per_s <= 0:
            self._last_release = due
            return [(due, size)]
        slices = []
        step = self.slice_bytes()
        for offset in range(0, size, step):
            length = min(step, size - offset)
            # Pacing: a slice is released once the link has had the time to send it; idle time earns no burst.
            self._link_free_at = max(due, self._link_free_at) + length / self._bytes_per_s
            slices.append((self._link_free_at, length))
        self._last_release = self._link_free_at
        return slices


@dataclass(frozen=True)
class ResetPeer:
    """Toxiproxy's reset_peer toxic with a per-connection toxicity of ``pct`` %."""

    pct: float = 0.0  # share of connections to reset, 0-100
    after_ms: int = 0  # delay from the first client bytes to the reset

    def chooses(self, rng: random.Random) -> bool:
        """Decide, once per new connection, whether it gets reset."""
        # Always draw, so a connection's decision depends only on its place in the sequence.
        return rng.random() * 100 < self.pct

    @property
    def swallows_first_chunk(self) -> bool:
        """Tell whether the first client chunk is dropped instead of forwarded (``after_ms`` 0, as in Toxiproxy).

        With a delay the connection carries traffic until its reset, so a
        WebSocket can open and then drop mid-session.
        """
        return self.after_ms <= 0

    def reset_at(self, first_client_bytes_at: float) -> float:
        """When a chosen connection is reset, given when its first client bytes arrived."""
        return first_client_bytes_at + max(0, self.after_ms) / 1000
