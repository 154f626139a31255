"""The run clock: which phase and round the run is in, asked by the load shape every tick.

It holds the run's `PhasePlan` (built once per run) and the facts the plan needs from
the rest of the pack, passed in as functions: the users' counts, the users asked for and
`-t`. Other rooms may hold the run in its settle (the recovery probe still trying, the
workers' final reports still on their way) and hear when the last flapping ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE
from scenarios.phase_plan import PHASE_DONE, PhaseSettings, SettleJudge
from scenarios.tracker import FlapCounts

logger = logging.getLogger("flapping_pack")

# holds_settle(elapsed_s, within_run_time) -> True to keep the run in its settle past the plan's end
SettleHold = Callable[[float, bool], bool]


class RunClock:
    """Phases and rounds of one run; `advance` is the load shape's one question."""

    def __init__(
        self,
        settings: PhaseSettings,
        cycles_per_user: Callable[[], int],
        counts: Callable[[], FlapCounts],
        users_asked: Callable[[], int],
        run_time_s: Callable[[], float | None],
        steady_users: Callable[[], int],
        settle: SettleJudge | None = None,
    ) -> None:
        self.settings = settings  # phase lengths; replaced when the web UI changes options
        self._cycles_per_user = cycles_per_user  # --flap-cycles now (0: until the run ends)
        self._counts = counts  # the run's connection counts (all workers' on a master)
        self._users_asked = users_asked  # -u now
        self._run_time_s = run_time_s  # -t now, seconds, or None
        self._steady_users = steady_users  # --steady-users now
        self._settle = settle  # when each settle is over (else after --settle-s)
        self.plan = settings.plan(settle=settle)  # the run's phases
        self.phase = PHASE_BASELINE  # the current phase, tags every sample
        self.stop_reason: str | None = None  # why the run ended early, if it did
        self._finished_before_round = 0  # users that finished in earlier rounds (counts are cumulative)
        self._settle_holds: list[SettleHold] = []  # rooms that may keep the run in its settle
        self._on_last_flapping_end: list[Callable[[], None]] = []  # told when the last round's flapping ends

    def hold_settle_while(self, hold: SettleHold) -> None:
        """Keep the run in its settle, past the plan's end, while `hold` says so."""
        self._settle_holds.append(hold)

    def when_last_flapping_ends(self, listener: Callable[[], None]) -> None:
        """Call `listener` once the last round's flapping has ended."""
        self._on_last_flapping_end.append(listener)

    @property
    def steady_users(self) -> int:
        """The steady users the shape adds while the others flap."""
        return self._steady_users()

    @property
    def flap_round(self) -> int:
        """The round the run is in: 0 in the baseline, then 1, 2, ..."""
        return self.plan.flap_round

    def restart(self, settings: PhaseSettings) -> None:
        """A new run: a fresh plan of these phases."""
        self.settings = settings
        self.plan = settings.plan(settle=self._settle)
        self.phase = PHASE_BASELINE
        self.stop_reason = None
        self._finished_before_round = 0

    def stop(self, reason: str) -> None:
        """End the run at the next tick, for `reason` (a dead server, a bad configuration)."""
        self.stop_reason = reason

    def users_done(self) -> bool:
        """True when every user asked for has finished this round's cycles (never with --flap-cycles 0).

        Each round spawns fresh users; the counts add up over the rounds, so a round's
        finished users are those counted since it began.
        """
        if self._cycles_per_user() == 0:
            return False
        target = self._users_asked()
        return target > 0 and self._counts().users_finished - self._finished_before_round >= target

    def advance(self, elapsed_s: float) -> str:
        """The phase at `elapsed_s` seconds into the run (the load shape asks every tick)."""
        if self.stop_reason is not None:
            self.phase = PHASE_DONE
            return PHASE_DONE
        plan = self.plan
        plan.run_time_s = self._run_time_s()
        flap_round = plan.flap_round
        phase = plan.advance(elapsed_s, self.users_done() if plan.phase == PHASE_FLAPPING else False)
        if plan.flap_round != flap_round:
            # A new round: users stopped at the end of the last one, and fresh ones flap anew.
            self._finished_before_round = self._counts().users_finished
        if self.phase == PHASE_FLAPPING and phase != PHASE_FLAPPING and plan.last_round:
            for listener in self._on_last_flapping_end:
                listener()
        within_run_time = plan.run_time_s is None or elapsed_s < plan.run_time_s
        if phase == PHASE_DONE and any(hold(elapsed_s, within_run_time) for hold in self._settle_holds):
            phase = PHASE_SETTLE
        if phase != self.phase:
            rounds = plan.rounds_fitting()
            of_round = f" (round {plan.flap_round} of {rounds})" if rounds > 1 and phase != PHASE_DONE else ""
            logger.info("flapping-pack: %s phase%s", phase, of_round)
        self.phase = phase
        return phase

    def interrupted(self) -> bool:
        """Whether the run ended early: stopped before its end, or -t cut the planned cycles short.

        With --flap-cycles 0 the users flap until -t: that end is the plan, not an interruption.
        A server that died ends the run too, but that is the verdict's own failure.
        """
        if self.stop_reason is not None:
            return False
        cut_short = self.plan.flapping_cut_short and self._cycles_per_user() > 0
        return self.phase != PHASE_DONE or cut_short
