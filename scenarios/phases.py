"""The Locust load shape that walks the run through its phases.

`FlapPhases` is thin: every tick it asks the run's clock (given to it by the pack,
`pack.run_clock.RunClock`) which phase the run is in, and turns the phase into a user
count. The phases themselves are pure: `scenarios.phase_plan`.
"""

from __future__ import annotations

from typing import Any, Protocol

from locust import LoadTestShape, User

from monitors.sample import PHASE_FLAPPING
from scenarios.flapping_user import users_asked
from scenarios.phase_plan import PHASE_DONE
from scenarios.steady_user import SteadyUser


class PhaseClock(Protocol):
    """What the shape asks every tick."""

    @property
    def steady_users(self) -> int:
        """The steady users to add while the others flap."""

    def advance(self, elapsed_s: float) -> str:
        """The phase at `elapsed_s` seconds into the run."""


class FlapPhases(LoadTestShape):
    """Runs the whole test: a baseline with no users, the flapping users, a settle, the end.

    `-u` and `-r` set the users and spawn rate; `-t` bounds the whole run.
    """

    use_common_options = True
    clock: PhaseClock | None = None  # the run's clock, given by the pack when it is switched on

    def drive_by(self, clock: PhaseClock) -> None:
        """Take the phases from `clock`."""
        self.clock = clock

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        """Ask the clock which phase the run is in and return the users for it (none without a clock)."""
        assert self.runner is not None
        if self.clock is None:
            return None
        phase = self.clock.advance(self.get_run_time())
        if phase == PHASE_DONE:
            return None
        environment = self.runner.environment
        options: Any = environment.parsed_options
        steady = self.clock.steady_users
        all_users = (users_asked(environment) or 1) + steady
        # Steady users come only when asked for: their class has a fixed count, set by the pack.
        classes = [c for c in environment.user_classes if steady or not issubclass(c, SteadyUser)]
        if phase == PHASE_FLAPPING:
            return all_users, float(options.spawn_rate or 1), classes
        # Before and after the flapping, no user at all; stop them in one step, so the
        # settle phase starts with every connection released by the clients.
        return 0, float(max(options.spawn_rate or 1, all_users)), classes
