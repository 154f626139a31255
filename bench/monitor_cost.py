"""The monitor's cost while the server holds many sockets: CPU per sample, and the event-loop stall.

Run by `bench/run.py` after `bench.hold_sockets` has filled the server's port. In a gevent
process (Locust's monkey-patching, as in a real run):

- CPU per sample: `time.process_time()` around `ProcessTreeSampler.sample()` (the process
  tree and the TCP states on the port), called directly, many times; and the same for the
  TCP-state query alone (with its split into user and kernel time, from getrusage) and,
  for comparison, psutil's `net_connections()`.
- Event-loop stall: a greenlet asks to wake every 1 ms and records how late it wakes, first
  alone (the floor), then while a `ResourceMonitor` polls every 100 ms through gevent's
  thread pool, as in a run.

    python -m bench.monitor_cost --pid PID --port PORT [--samples 30]
"""

import locust  # noqa: F401  isort: skip  (monkey-patches the standard library for gevent first)

import argparse
import json
import resource
import statistics
import time

import gevent
import psutil

from monitors.monitor import ResourceMonitor
from monitors.process_sampler import ProcessTreeSampler
from monitors.tcp_sockets import tcp_states_on_port

TICK_S = 0.001  # the ticker's sleep


def _cpu_ms(action, times: int) -> list[float]:
    spent = []
    for _ in range(times):
        started = time.process_time()
        action()
        spent.append((time.process_time() - started) * 1000)
    return spent


def _user_and_kernel_ms(action, times: int) -> dict[str, float]:
    """Mean CPU per call of `action` split into user (Python) and system (kernel) time, ms."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(times):
        action()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "user": round((after.ru_utime - before.ru_utime) * 1000 / times, 3),
        "kernel": round((after.ru_stime - before.ru_stime) * 1000 / times, 3),
    }


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }


def _max_stall_ms(seconds: float) -> float:
    """Run a 1 ms ticker for `seconds`; the longest wake-up delay beyond the asked 1 ms."""
    worst = 0.0
    end = time.perf_counter() + seconds
    while True:
        before = time.perf_counter()
        if before >= end:
            return round(worst * 1000, 3)
        gevent.sleep(TICK_S)
        worst = max(worst, time.perf_counter() - before - TICK_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--stall-s", type=float, default=3.0)
    args = parser.parse_args()
    sampler = ProcessTreeSampler.for_pid(args.pid, args.port)
    states = tcp_states_on_port(args.port)
    result: dict = {"server_sockets": sum(states.values()), "tcp_states": states}
    result["sample_cpu_ms"] = _summary(_cpu_ms(lambda: sampler.sample(time.monotonic()), args.samples))
    result["tcp_states_cpu_ms"] = _summary(_cpu_ms(lambda: tcp_states_on_port(args.port), args.samples))
    result["tcp_states_split_ms"] = _user_and_kernel_ms(lambda: tcp_states_on_port(args.port), args.samples)
    result["net_connections_cpu_ms"] = _summary(_cpu_ms(lambda: psutil.net_connections("tcp"), 3))
    result["stall_floor_ms"] = _max_stall_ms(args.stall_s)
    monitor = ResourceMonitor([sampler], 0.1, phase_of=lambda: "flapping", cycles_of=lambda: 0)
    monitor.start()
    result["stall_while_monitoring_ms"] = _max_stall_ms(args.stall_s)
    monitor.stop()
    result["polls"] = len(monitor.timeline)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
