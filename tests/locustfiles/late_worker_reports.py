"""The pack's locustfile, with workers whose stats come late: no report during the run, and a
final report that leaves two seconds after a stop.

Locust's headless master waits 0.5 s for its workers' final reports before it quits; on a busy
machine a worker can take longer. Against these workers, a run without the pack's final-report
request loses every row of its workers; with it, every row reaches the master.
With LATE_WORKERS_SILENT=1 the workers never answer that request.
"""

import os
from typing import Any

import gevent
import locust.runners
from locust import events
from locust.runners import WorkerRunner

from locustfile import FlapPhases, FlappingClient, SteadyClient
from pack.worker_link import FLUSH_MESSAGE

locust.runners.WORKER_REPORT_INTERVAL = 60  # read at each of the worker's reports: none but the first

__all__ = ["FlapPhases", "FlappingClient", "SteadyClient"]


@events.test_stop.add_listener
def _slow_stop(environment: Any, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        gevent.sleep(2)


@events.init.add_listener
def _silence(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if os.environ.get("LATE_WORKERS_SILENT") == "1" and isinstance(runner, WorkerRunner):
        runner.custom_messages.pop(FLUSH_MESSAGE)
