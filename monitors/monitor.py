"""The resource monitor: a greenlet that polls the samplers and keeps the timeline.

Samplers block (psutil, /proc, netlink, HTTP), so each poll runs in gevent's thread
pool and Locust's event loop is never stalled by a slow sample.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import gevent

from monitors.sample import ResourceSample, Sampler, SamplerError, merge_samples
from monitors.timeline import Timeline

logger = logging.getLogger(__name__)

# A metrics endpoint that fails this many scrapes in a row counts as a dead server.
FAILED_POLLS_BEFORE_DEAD = 3


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
    ) -> None:
        self.samplers = list(samplers)  # process tree and/or metrics endpoint
        self.interval_s = interval_s  # time between polls
        self.timeline = Timeline()  # every sample of this run, in order
        self.last_error: str | None = None  # the latest sampler failure, for the UI and logs
        self._phase_of = phase_of  # which phase the run is in now
        self._cycles_of = cycles_of  # completed cycles across all users now
        self._on_death = on_death  # told once when the server is seen dead
        self._clock = clock  # monotonic seconds
        self._failed_polls = 0  # consecutive polls in which every sampler failed
        self._death_reported = False  # on_death fires once
        self._greenlet: gevent.Greenlet | None = None  # the polling loop

    def describe(self) -> str:
        """One line naming what is watched."""
        return "; ".join(s.describe() for s in self.samplers) or "nothing"

    def start(self) -> None:
        """Start polling on a greenlet (once)."""
        if self._greenlet is None and self.samplers:
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
        now = self._clock()
        threadpool = gevent.get_hub().threadpool
        sample = threadpool.spawn(self._sample_all, now).get()
        if sample is None:
            return None
        sample = dataclasses.replace(sample, phase=self._phase_of(), cycles_completed=self._cycles_of())
        self.timeline.append(sample)
        if not sample.alive and not self._death_reported and self._on_death is not None:
            self._death_reported = True
            self._on_death(sample)
        return sample

    def _sample_all(self, now: float) -> ResourceSample | None:
        merged: ResourceSample | None = None
        errors = []
        for sampler in self.samplers:
            try:
                sample = sampler.sample(now)
            except SamplerError as error:
                errors.append(str(error))
                continue
            except Exception as error:  # a sampler bug must not end the monitor
                errors.append(f"{type(error).__name__} in sampler")
                continue
            merged = sample if merged is None else merge_samples(merged, sample)
        if errors:
            self.last_error = errors[-1]
        if merged is not None:
            self._failed_polls = 0
            return merged
        self._failed_polls += 1
        if self._failed_polls >= FAILED_POLLS_BEFORE_DEAD:
            return ResourceSample(t_s=now, alive=False)
        return None
