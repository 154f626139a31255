"""The phases of a flapping run, and the Locust load shape that walks through them.

`PhasePlan` is pure (elapsed time in, phase out); `FlapPhases` is the thin shape
that asks it every tick and turns the phase into a user count.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, User

from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE
from scenarios.steady_user import SteadyUser

PHASE_DONE = "done"


class PhasePlan:
    """baseline -> flapping -> settle -> done, from elapsed seconds and a "users are done" flag."""

    def __init__(self, baseline_s: float, settle_s: float, run_time_s: float | None = None) -> None:
        self.baseline_s = baseline_s  # no users before this
        self.settle_s = settle_s  # no users for this long after the flapping
        self.run_time_s = run_time_s  # the whole run must fit in this (settle included), if set
        self.phase = PHASE_BASELINE  # where the run is now
        self.settle_started_s: float | None = None  # when flapping ended
        self.flapping_cut_short = False  # flapping ended by the run time, not by the users

    def advance(self, elapsed_s: float, users_done: bool) -> str:
        """The phase at `elapsed_s` seconds into the run."""
        if self.phase == PHASE_BASELINE and elapsed_s >= self.baseline_s:
            self.phase = PHASE_FLAPPING
        if self.phase == PHASE_FLAPPING:
            out_of_time = self.run_time_s is not None and elapsed_s >= max(
                self.baseline_s, self.run_time_s - self.settle_s
            )
            if users_done or out_of_time:
                self.flapping_cut_short = out_of_time and not users_done
                self.phase = PHASE_SETTLE
                self.settle_started_s = elapsed_s
        if self.phase == PHASE_SETTLE:
            assert self.settle_started_s is not None
            settled = elapsed_s - self.settle_started_s >= self.settle_s
            if settled or (self.run_time_s is not None and elapsed_s >= self.run_time_s):
                self.phase = PHASE_DONE
        return self.phase


class FlapPhases(LoadTestShape):
    """Runs the whole test: a baseline with no users, the flapping users, a settle, the end.

    `-u` and `-r` set the users and spawn rate; `-t` bounds the whole run.
    """

    use_common_options = True

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        """Ask the pack which phase the run is in and return the users for it."""
        assert self.runner is not None
        environment: Any = self.runner.environment
        pack = environment.flapping_pack
        phase = pack.advance_phase(self.get_run_time())
        if phase == PHASE_DONE:
            return None
        options = environment.parsed_options
        steady = pack.config.steady_users
        all_users = int(options.num_users or 1) + steady
        # Steady users come only when asked for: their class has a fixed count, set by the pack.
        classes = [c for c in environment.user_classes if steady or not issubclass(c, SteadyUser)]
        if phase == PHASE_FLAPPING:
            return all_users, float(options.spawn_rate or 1), classes
        # Before and after the flapping, no user at all; stop them in one step, so the
        # settle phase starts with every connection released by the clients.
        return 0, float(max(options.spawn_rate or 1, all_users)), classes
