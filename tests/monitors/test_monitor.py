"""The monitor's judgement of a gone server: restart grace, and the generator's own fd limit."""

from __future__ import annotations

import errno

from monitors.monitor import GENERATOR_BLIND, ResourceMonitor, generator_out_of_fds
from monitors.sample import ResourceSample, SamplerError


class ScriptedSampler:
    """Answers each poll with the next scripted sample, or raises the scripted error."""

    def __init__(self, script: list[ResourceSample | BaseException]) -> None:
        self.script = list(script)  # consumed in order

    def describe(self) -> str:
        return "scripted"

    def sample(self, now_s: float) -> ResourceSample:
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0  # seconds

    def __call__(self) -> float:
        return self.now


def _monitor(script: list, grace_s: float, deaths: list, clock: FakeClock) -> ResourceMonitor:
    return ResourceMonitor(
        [ScriptedSampler(script)],
        0.5,
        phase_of=lambda: "flapping",
        cycles_of=lambda: 0,
        on_death=deaths.append,
        clock=clock,
        death_grace_s=grace_s,
    )


def _poll_every_second(monitor: ResourceMonitor, clock: FakeClock, polls: int) -> None:
    for _ in range(polls):
        monitor.poll()
        clock.now += 1.0


def test_a_server_back_within_the_grace_is_a_restart_not_a_death() -> None:
    """Gone for 2 s, then a new pid: no death reported, the timeline shows the pid change."""
    deaths: list = []
    clock = FakeClock()
    script = [
        ResourceSample(0, pid=10),
        ResourceSample(0, alive=False, pid=10),  # 1 s: gone
        ResourceSample(0, alive=False, pid=10),  # 2 s: still gone
        ResourceSample(0, pid=20),  # 3 s: a new server on the port
    ]
    monitor = _monitor(script, 5.0, deaths, clock)
    _poll_every_second(monitor, clock, 4)
    assert deaths == []
    assert monitor.timeline.pid_change() == (10, 20)


def test_a_server_gone_longer_than_the_grace_is_dead() -> None:
    """Gone at 1 s, still gone at 6 s: the death is reported once, when the grace is over."""
    deaths: list = []
    clock = FakeClock()
    script = [ResourceSample(0, pid=10)] + [ResourceSample(0, alive=False, pid=10)] * 7
    monitor = _monitor(script, 5.0, deaths, clock)
    _poll_every_second(monitor, clock, 6)
    assert deaths == []
    _poll_every_second(monitor, clock, 2)
    assert len(deaths) == 1


def test_without_a_grace_the_first_gone_sample_is_a_death() -> None:
    """A server watched by pid: the first gone sample ends the run."""
    deaths: list = []
    clock = FakeClock()
    monitor = _monitor([ResourceSample(0, pid=10), ResourceSample(0, alive=False, pid=10)], 0.0, deaths, clock)
    _poll_every_second(monitor, clock, 2)
    assert len(deaths) == 1


def _out_of_fds_error() -> SamplerError:
    try:
        try:
            raise OSError(errno.EMFILE, "Too many open files")
        except OSError:
            raise SamplerError("port 1: cannot read TCP sockets: Too many open files") from None
    except SamplerError as error:
        return error


def test_polls_blinded_by_the_generators_fd_limit_never_make_a_dead_server() -> None:
    """Every sampler failing with EMFILE (the generator's own limit) is no evidence against the server."""
    deaths: list = []
    clock = FakeClock()
    monitor = _monitor([_out_of_fds_error() for _ in range(6)], 0.0, deaths, clock)
    _poll_every_second(monitor, clock, 6)
    assert deaths == []
    assert len(monitor.timeline) == 0
    assert monitor.last_error == GENERATOR_BLIND


def test_other_failed_polls_still_make_a_dead_server() -> None:
    """An endpoint that fails three polls in a row for another reason is a dead server."""
    deaths: list = []
    clock = FakeClock()
    monitor = _monitor([SamplerError("connection refused") for _ in range(3)], 0.0, deaths, clock)
    _poll_every_second(monitor, clock, 3)
    assert len(deaths) == 1


def test_out_of_fds_is_found_in_an_errors_context() -> None:
    """A SamplerError raised `from None` over an EMFILE still counts as the generator's limit."""
    assert generator_out_of_fds([_out_of_fds_error()])
    assert not generator_out_of_fds([SamplerError("HTTP 500")])


def test_samples_taken_after_the_run_is_done_are_not_part_of_its_timeline() -> None:
    """Between the last settle's end and the monitor's stop, a poll records nothing (no `done` phase)."""
    # Read before the sample is taken, then to tag it: the run ends during the second reading.
    phases = iter(["settle", "settle", "settle", "done"])
    monitor = ResourceMonitor(
        [ScriptedSampler([ResourceSample(0, pid=10), ResourceSample(0, pid=10)])],
        0.5,
        phase_of=lambda: next(phases),
        cycles_of=lambda: 0,
        clock=FakeClock(),
    )
    assert monitor.poll() is not None
    assert monitor.poll() is None
    assert [s.phase for s in monitor.timeline.samples] == ["settle"]


def test_each_sample_is_tagged_with_the_stream_messages_lost_so_far() -> None:
    """The chart's lost-messages series: every sample carries the count at its time (None without a stream)."""
    lost = iter([0, 3, 5])
    monitor = ResourceMonitor(
        [ScriptedSampler([ResourceSample(0, pid=10)] * 3)],
        0.5,
        phase_of=lambda: "flapping",
        cycles_of=lambda: 0,
        clock=FakeClock(),
        lost_of=lambda: next(lost),
    )
    for _ in range(3):
        monitor.poll()
    assert [s.messages_lost for s in monitor.timeline.samples] == [0, 3, 5]
