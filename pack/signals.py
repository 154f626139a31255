"""Signals: Ctrl-C and SIGTERM reach Locust's main greenlet, so every stop ends with a verdict and cleanup."""

from __future__ import annotations

import signal
from typing import Any

import gevent


def _interrupt_main_greenlet() -> None:
    """Raise KeyboardInterrupt in the main greenlet (Locust's way to stop), whatever greenlet runs.

    For SIGTERM while the headless shape runs: Locust installs its SIGTERM handler only
    after a headless shape test returns, so until then SIGTERM would kill the process
    without a verdict or cleanup. For SIGINT: see `route_sigint`.
    """
    gevent.get_hub().parent.throw(KeyboardInterrupt())


_sigint_route: Any = None  # our SIGINT handler, kept for the life of the process


def route_sigint() -> None:
    """Deliver Ctrl-C to the main greenlet, where Locust expects it, in every Locust process (idempotent).

    Python raises KeyboardInterrupt in whichever greenlet runs when the signal comes: with
    hundreds of busy users, usually a user, which dies with a traceback (gevent passes the
    interrupt on, so the run still stops). A terminal's Ctrl-C also reaches the workers of
    --processes, where a user's traceback also sets exit code 2.
    """
    global _sigint_route
    if _sigint_route is None:
        _sigint_route = gevent.signal_handler(signal.SIGINT, _interrupt_main_greenlet)


class SigtermGuard:
    """SIGTERM as Ctrl-C while a headless run has no handler of Locust's own; handed back at the run's end."""

    def __init__(self) -> None:
        self._handler: Any = None  # our SIGTERM handler while it is held

    def hold(self) -> None:
        """Take SIGTERM (once)."""
        if self._handler is None:
            self._handler = gevent.signal_handler(signal.SIGTERM, _interrupt_main_greenlet)

    def release(self) -> None:
        """Hand SIGTERM back to Locust."""
        handler, self._handler = self._handler, None
        if handler is not None:
            handler.cancel()
