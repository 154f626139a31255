"""The phases of a flapping run, pure: elapsed time in, phase out.

`PhasePlan` walks baseline -> (flapping -> settle) x rounds -> done; the run clock
(`pack.run_clock`) asks it every tick and the load shape (`scenarios.phases.FlapPhases`)
turns the phase into a user count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE

PHASE_DONE = "done"
MIN_FLAPPING_S = 1.0  # the least flapping a run time must leave room for: every user connects within it


@dataclass(frozen=True)
class PhaseSettings:
    """How long the phases last; defaults are the options' defaults."""

    baseline_s: float = 2.0  # sampling before any user connects
    settle_s: float = 5.0  # the least time after each round's flapping for the server to release resources
    settle_max_s: float = 60.0  # the most: a settle goes on while the server still gives back, up to this
    rounds: int = 2  # rounds of flapping and settle

    def plan(self, run_time_s: float | None = None, settle: SettleJudge | None = None) -> PhasePlan:
        """A fresh plan of these phases; `settle` says when each settle is over (else after `settle_s`)."""
        return PhasePlan(self.baseline_s, self.settle_s, run_time_s=run_time_s, rounds=self.rounds, settle=settle)


class SettleJudge(Protocol):
    """Says when a settle is over."""

    def begin(self, flap_round: int, elapsed_s: float) -> None:
        """Round `flap_round`'s settle begins, `elapsed_s` into the run."""

    def over(self, elapsed_s: float) -> bool:
        """Whether the settle that began last is over."""


class FixedSettle:
    """A settle that is over after a fixed time."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s  # how long each settle lasts
        self._started_s = 0.0  # when the current settle began

    def begin(self, flap_round: int, elapsed_s: float) -> None:
        """Remember when this settle began."""
        self._started_s = elapsed_s

    def over(self, elapsed_s: float) -> bool:
        """Over once `settle_s` has passed."""
        return elapsed_s - self._started_s >= self.settle_s


class PhasePlan:
    """baseline -> (flapping -> settle) x rounds -> done, from elapsed seconds and a "users are done" flag.

    Every round is the same flapping followed by a settle: round 1 takes the server to its
    high-water mark, later rounds show what more cycles add (monitors/rounds.py).
    """

    def __init__(
        self,
        baseline_s: float,
        settle_s: float,
        run_time_s: float | None = None,
        rounds: int = 1,
        settle: SettleJudge | None = None,
    ) -> None:
        self.baseline_s = baseline_s  # no users before this
        self.settle_s = settle_s  # no users for this long after each round's flapping
        self.run_time_s = run_time_s  # the whole run must fit in this (settles included), if set
        self.rounds = rounds  # rounds of flapping and settle asked for
        self.settle = settle or FixedSettle(settle_s)  # when each settle is over
        self.phase = PHASE_BASELINE  # where the run is now
        self.flap_round = 0  # the round the run is in: 0 in the baseline, then 1, 2, ...
        self.flapping_started_s: float | None = None  # when the current round's flapping began
        self.settle_started_s: float | None = None  # when the current round's flapping ended
        self.flapping_cut_short = False  # some round's flapping ended by the run time, not by the users

    def rounds_fitting(self) -> int:
        """The rounds that fit in the run time: all of them without one, and always at least one.

        Each round needs `MIN_FLAPPING_S` of flapping and its settle; a -t too short for
        every round asked for runs fewer (the verdict then says round 2 never settled).
        """
        each_s = MIN_FLAPPING_S + self.settle_s
        if self.run_time_s is None:
            return self.rounds
        return max(1, min(self.rounds, int((self.run_time_s - self.baseline_s) // each_s)))

    @property
    def last_round(self) -> bool:
        """Whether the current round is the last one the run will have."""
        return self.flap_round >= self.rounds_fitting()

    def _start_round(self, elapsed_s: float) -> None:
        self.flap_round += 1
        self.phase = PHASE_FLAPPING
        self.flapping_started_s = elapsed_s

    def _flapping_deadline_s(self) -> float | None:
        """When -t ends this round's flapping: the time left, less the settles, shared by the rounds left."""
        if self.run_time_s is None or self.flapping_started_s is None:
            return None
        left = max(1, self.rounds_fitting() - self.flap_round + 1)
        share_s = (self.run_time_s - self.flapping_started_s - left * self.settle_s) / left
        return self.flapping_started_s + max(0.0, share_s)

    def advance(self, elapsed_s: float, users_done: bool) -> str:
        """The phase at `elapsed_s` seconds into the run; `users_done`: this round's users finished."""
        if self.phase == PHASE_BASELINE and elapsed_s >= self.baseline_s:
            self._start_round(elapsed_s)
        if self.phase == PHASE_FLAPPING:
            deadline_s = self._flapping_deadline_s()
            out_of_time = deadline_s is not None and elapsed_s >= deadline_s
            if users_done or out_of_time:
                self.flapping_cut_short = self.flapping_cut_short or (out_of_time and not users_done)
                self.phase = PHASE_SETTLE
                self.settle_started_s = elapsed_s
                self.settle.begin(self.flap_round, elapsed_s)
        if self.phase == PHASE_SETTLE:
            assert self.settle_started_s is not None
            settled = self.settle.over(elapsed_s)
            if (settled and self.last_round) or (self.run_time_s is not None and elapsed_s >= self.run_time_s):
                self.phase = PHASE_DONE
            elif settled:
                self._start_round(elapsed_s)
        return self.phase

    def least_run_time_s(self) -> float:
        """The shortest -t that fits every phase: the baseline, some flapping and the settle.

        Some flapping is `MIN_FLAPPING_S`: each user's first connect waits for its phase
        within the period, at most a second, so less could end the flapping before any
        connect. A -t that then cuts a long hold short is an interrupted run, judged as one.
        A phase added to the plan belongs in this sum.
        """
        return self.baseline_s + MIN_FLAPPING_S + self.settle_s

    def run_time_problem(self, run_time_s: float) -> str | None:
        """The one line refusing a -t too short for the phases, or None when it fits."""
        least_s = self.least_run_time_s()
        if run_time_s >= least_s:
            return None
        flapping_s = least_s - self.baseline_s - self.settle_s
        return (
            f"-t {run_time_s:g}s: too short for the phases; the least run time is {math.ceil(least_s)}s "
            f"({self.baseline_s:g} s baseline + {flapping_s:g} s of flapping + {self.settle_s:g} s settle)"
        )
