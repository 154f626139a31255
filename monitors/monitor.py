"""The resource monitor: a greenlet that polls the samplers and keeps the timeline.

Samplers block (psutil, /proc, netlink, HTTP), so each poll runs in gevent's thread
pool and Locust's event loop is never stalled by a slow sample. While a sample's Python
code runs it holds the GIL; the monitor shortens the interpreter's switch interval so the
event loop gets it back within half a millisecond instead of five. The sampling thread
also lowers its own CPU priority, so on a busy core the kernel runs the event loop first.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

import gevent

from monitors.freshness import METRICS_SOURCE, Freshness, estimate_freshness
from monitors.sample import PHASES, ResourceSample, Sampler, SamplerError, merge_samples
from monitors.timeline import Timeline

logger = logging.getLogger(__name__)

GENERATOR_BLIND = "the load generator ran out of file descriptors: the server could not be observed"
_FD_LIMIT_ERRNOS = (errno.EMFILE, errno.ENFILE)


def generator_out_of_fds(errors: Sequence[BaseException]) -> bool:
    """Whether sampling failed because this process has no file descriptor left (EMFILE, ENFILE).

    Looks through each error's chain (a SamplerError raised `from None` still keeps its
    context), then tries to open a file.
    """
    for error in errors:
        seen: BaseException | None = error
        for _ in range(8):
            if seen is None:
                break
            if isinstance(seen, OSError) and seen.errno in _FD_LIMIT_ERRNOS:
                return True
            seen = seen.__cause__ or seen.__context__
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError as error:
        return error.errno in _FD_LIMIT_ERRNOS
    os.close(fd)
    return False


# A metrics endpoint that fails this many scrapes in a row counts as a dead server.
FAILED_POLLS_BEFORE_DEAD = 3
# Longest time the sampling thread keeps the GIL from the event loop (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005
SAMPLER_NICE = 10  # the sampling thread's nice value (Linux sets it per thread); the event loop keeps its own


def _lower_thread_priority() -> None:
    """Make the calling native thread nicer (never less nice); silently not where unsupported."""
    try:
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) < SAMPLER_NICE:
            os.setpriority(os.PRIO_PROCESS, thread, SAMPLER_NICE)
    except (AttributeError, OSError):
        pass


class ResourceMonitor:
    """Polls every sampler each `interval_s` and appends one merged sample to the timeline."""

    def __init__(
        self,
        samplers: Sequence[Sampler],
        interval_s: float,
        phase_of: Callable[[], str],
        cycles_of: Callable[[], int],
        on_death: Callable[[ResourceSample], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        death_grace_s: float = 0.0,
        round_of: Callable[[], int] = lambda: 0,
        lost_of: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.samplers = list(samplers)  # process tree and/or metrics endpoint
        self.interval_s = interval_s  # time between polls
        self.timeline = Timeline()  # every sample of this run, in order
        self.last_error: str | None = None  # the latest sampler failure, for the UI and logs
        self._phase_of = phase_of  # which phase the run is in now
        self._cycles_of = cycles_of  # completed cycles across all users now
        self._round_of = round_of  # which round of flapping and settle the run is in now
        self._lost_of = lost_of  # stream messages lost so far across all users, None without a stream
        self._on_death = on_death  # told once when the server is seen dead
        # How long the server may be seen gone before it counts as dead: a server watched
        # through its port may restart there (the sampler follows it; the verdict says so).
        self._death_grace_s = death_grace_s
        self._gone_since: float | None = None  # when the current run of "gone" samples began
        self._last_pid: int | None = None  # the server's pid in the latest sample that knew it
        self._clock = clock  # monotonic seconds
        self._failed_polls = 0  # consecutive polls in which every sampler failed
        self._death_reported = False  # on_death fires once
        self._greenlet: gevent.Greenlet | None = None  # the polling loop

    def describe(self) -> str:
        """One line naming what is watched."""
        return "; ".join(s.describe() for s in self.samplers) or "nothing"

    def series_sources(self) -> dict[str, str]:
        """Series -> the source that gives it: the first sampler that measures it wins, as in merge_samples."""
        sources: dict[str, str] = {}
        for sampler in self.samplers:
            for name in getattr(sampler, "series", ()):
                sources.setdefault(name, getattr(sampler, "source", type(sampler).__name__))
        return sources

    def freshness(self) -> Freshness:
        """How often each series changed during flapping so far, and the metrics that never did.

        A gauge of the metrics endpoint that never changes while clients flap is suspect
        (threads excepted: a server may rightly run one thread).
        """
        sources = self.series_sources()
        suspects = [name for name, source in sources.items() if source == METRICS_SOURCE and name != "threads"]
        return estimate_freshness(self.timeline.samples, sources, self.interval_s, suspects)

    def start(self) -> None:
        """Start polling on a greenlet (once)."""
        if self._greenlet is None and self.samplers:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """Stop polling; safe to call twice."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=True, timeout=2)

    def _run(self) -> None:
        next_poll = self._clock()
        while True:
            self.poll()
            next_poll += self.interval_s
            now = self._clock()
            if next_poll < now:  # a slow poll: skip the missed slots instead of bursting
                next_poll = now
            gevent.sleep(next_poll - now)

    def poll(self) -> ResourceSample | None:
        """Take one sample now (in the thread pool), tag it and append it."""
        if self._phase_of() not in PHASES:  # the run is over (its last settle ended): nothing to read
            return None
        now = self._clock()
        threadpool = gevent.get_hub().threadpool
        sample = threadpool.spawn(self._sample_all, now).get()
        phase = self._phase_of()  # the phase when the reading ended: the run may have ended during it
        if sample is None or phase not in PHASES:
            return None
        sample = dataclasses.replace(
            sample,
            phase=phase,
            cycles_completed=self._cycles_of(),
            flap_round=self._round_of(),
            messages_lost=self._lost_of(),
        )
        previous_pid = self._last_pid
        if sample.pid is not None:
            self._last_pid = sample.pid
        if previous_pid is not None and sample.pid is not None and sample.pid != previous_pid:
            logger.warning("flapping-pack: the server restarted: pid %d → %d", previous_pid, sample.pid)
        self.timeline.append(sample)
        if sample.alive:
            self._gone_since = None
        elif self._gone_since is None:
            self._gone_since = now
        dead = self._gone_since is not None and now - self._gone_since >= self._death_grace_s
        if dead and not self._death_reported and self._on_death is not None:
            self._death_reported = True
            self._on_death(sample)
        return sample

    def _sample_all(self, now: float) -> ResourceSample | None:
        _lower_thread_priority()  # a thread of gevent's pool: it stays nice, which suits its other work too
        merged: ResourceSample | None = None
        errors = []
        raised: list[BaseException] = []
        for sampler in self.samplers:
            try:
                sample = sampler.sample(now)
            except SamplerError as error:
                errors.append(str(error))
                raised.append(error)
                continue
            except Exception as error:  # a sampler bug must not end the monitor
                errors.append(f"{type(error).__name__} in sampler")
                raised.append(error)
                continue
            merged = sample if merged is None else merge_samples(merged, sample)
        if errors:
            self.last_error = errors[-1]
        if merged is not None:
            self._failed_polls = 0
            return merged
        if generator_out_of_fds(raised):
            # The load generator's own limit, not the server: such a poll says nothing about it.
            self.last_error = GENERATOR_BLIND
            return None
        self._failed_polls += 1
        if self._failed_polls >= FAILED_POLLS_BEFORE_DEAD:
            return ResourceSample(t_s=now, alive=False)
        return None
