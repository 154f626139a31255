"""Helpers for the reference server tests: bounded waits, a client and a /metrics reader."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import websocket
from prometheus_client.parser import text_string_to_metric_families

from refserver.launch import RunningRefServer

# Every wait in these tests is bounded by this; it only matters when something is broken.
DEADLINE_S = 5.0

StartServer = Callable[..., RunningRefServer]


def connect(url: str, **kwargs: object) -> websocket.WebSocket:
    """Open a WebSocket client connection with a bounded timeout."""
    return websocket.create_connection(url, timeout=DEADLINE_S, **kwargs)


def scrape(metrics_url: str) -> dict[str, float]:
    """Fetch /metrics and index the samples as ``name`` or ``name{label="value"}``."""
    with urllib.request.urlopen(metrics_url, timeout=DEADLINE_S) as response:
        text = response.read().decode("utf-8")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def wait_for_metric(
    metrics_url: str, name: str, predicate: Callable[[float], bool], timeout_s: float = DEADLINE_S
) -> float:
    """Poll /metrics until ``predicate(value of name)`` holds; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = scrape(metrics_url).get(name)
        if value is not None and predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {value} after {timeout_s} s")
        time.sleep(0.02)


def rss_growth_bytes(metrics_url: str, session: Callable[[], None], sessions: int, idle_metric: str) -> float:
    """How much the server's RSS grows over `sessions` calls of `session`, read once `idle_metric` is back to 0.

    Five warm-up sessions come first: the first ones allocate lazily initialised state.
    """
    for _ in range(5):
        session()
    before = scrape(metrics_url)["process_resident_memory_bytes"]
    for _ in range(sessions):
        session()
    wait_for_metric(metrics_url, idle_metric, lambda v: v == 0)
    return scrape(metrics_url)["process_resident_memory_bytes"] - before


def assert_only_the_leak_grew_rss(leaking_bytes: float, healthy_bytes: float, expected_bytes: float) -> None:
    """The leaking server's RSS grew by at least 80 % of `expected_bytes`, the healthy one's by at most 20 %."""
    leaking, healthy, expected = leaking_bytes / 2**20, healthy_bytes / 2**20, expected_bytes / 2**20
    assert leaking >= 0.8 * expected, f"RSS grew {leaking:.1f} MiB, expected ~{expected:.0f}"
    assert healthy <= 0.2 * expected, f"RSS grew {healthy:.1f} MiB without a fault"
