"""Rounds: how a leak differs from a high-water mark, in settled levels.

A run flaps in rounds of the same flapping, each followed by a settle. Round 1 takes
the server to the high-water mark of what it keeps for its peak concurrency (heap
arenas, buffer pools, caches): that depends on how many clients are connected at once,
is reached in the first seconds and stays. What a later round adds on top of round 1's
settled level grows with the number of cycles, which is what a leak does. Both levels
are settled (no client connected), so they compare like with like.

Pure code: a Timeline in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

from .timeline import Timeline

# Growth from one settled level to the next that a healthy server shows anyway: measured
# on the bundled server, round over round, 0 to 72 KB at 10 users x 20 cycles and 0.4 to
# 3.1 MB at 200 users x 5 cycles (README, "What a run does"). Below it a later round's
# growth never counts as a leak, so very short rounds cannot fail on allocator noise.
ALLOCATOR_NOISE_MB = 1.0


@dataclass(frozen=True)
class RoundGrowth:
    """One resource's settled levels over the rounds: baseline, after round 1, after the last round."""

    baseline: float  # the baseline level
    first: float  # the settled level after the first round
    last: float  # the settled level after the last round
    first_round: int  # the first round with a settle phase (1)
    last_round: int  # the last round with a settle phase (2, or more)
    first_cycles: int  # flap cycles of the first round
    later_cycles: int  # flap cycles of the rounds after it

    @property
    def first_growth(self) -> float:
        """What the first round added to the baseline: the high-water mark, plus any leak."""
        return self.first - self.baseline

    @property
    def later_growth(self) -> float:
        """What the later rounds added after the first: the leak."""
        return self.last - self.first

    @property
    def total_growth(self) -> float:
        """Baseline to the final settled level (the one-round rule's measure)."""
        return self.last - self.baseline

    @property
    def total_cycles(self) -> int:
        """Flap cycles of every round."""
        return self.first_cycles + self.later_cycles

    @property
    def first_label(self) -> str:
        """`round 1`."""
        return f"round {self.first_round}"

    @property
    def later_label(self) -> str:
        """`round 2`, or `rounds 2-3`."""
        following = self.first_round + 1
        if self.last_round == following:
            return f"round {following}"
        return f"rounds {following}-{self.last_round}"


def round_growth(timeline: Timeline, metric: str) -> RoundGrowth | None:
    """The metric's levels over the rounds; None without two settled rounds or without the metric.

    `metric` is a ResourceLevels attribute: rss_bytes, open_fds or agents.
    """
    rounds = [r for r in timeline.settled_rounds() if r >= 1]
    if len(rounds) < 2:
        return None
    first_round, last_round = rounds[0], rounds[-1]
    baseline = getattr(timeline.baseline(), metric)
    first = getattr(timeline.settled(first_round), metric)
    last = getattr(timeline.settled(last_round), metric)
    if baseline is None or first is None or last is None:
        return None
    return RoundGrowth(
        baseline=baseline,
        first=first,
        last=last,
        first_round=first_round,
        last_round=last_round,
        first_cycles=sum(timeline.round_cycles(r) for r in range(1, first_round + 1)),
        later_cycles=sum(timeline.round_cycles(r) for r in range(first_round + 1, last_round + 1)),
    )
