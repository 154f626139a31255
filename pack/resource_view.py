"""What the web UI tab and the HTML report show of the server's resources; pure code.

Samples in, rows and chart columns out: no Flask, no Locust, no sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monitors.checks import fmt_number
from monitors.sample import MIB, RESOURCE_METRICS, ResourceSample
from monitors.timeline import ResourceLevels, Timeline

# The tab's table: one row per resource.
TABLE_STRUCTURE = [
    {"key": "metric", "title": "Resource"},
    {"key": "baseline", "title": "Baseline"},
    {"key": "now", "title": "Now (latest sample)"},
    {"key": "growth", "title": "Growth"},
]


def latest_levels(timeline: Iterable[ResourceSample]) -> dict[str, int | None]:
    """Each metric's most recent known value (None when never observed)."""
    latest: dict[str, int | None] = {metric.name: None for metric in RESOURCE_METRICS}
    for sample in timeline:
        for metric in RESOURCE_METRICS:
            value = metric.value_of(sample)
            if value is not None:
                latest[metric.name] = value
    return latest


def _shown(value: float | None, scale: float, unit: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    text = fmt_number(value / scale)
    if signed and value > 0 and text != "0":
        text = "+" + text
    return f"{text} {unit}" if unit else text


def resource_rows(baseline: ResourceLevels, latest: dict[str, int | None]) -> list[dict[str, str]]:
    """The tab's table: baseline (median), now (latest sample) and growth, per resource."""
    rows = []
    for metric in RESOURCE_METRICS:
        before: float | None = getattr(baseline, metric.name)
        now = latest.get(metric.name)
        growth = None if before is None or now is None else now - before
        rows.append(
            {
                "metric": metric.label,
                "baseline": _shown(before, metric.scale, metric.unit),
                "now": _shown(now, metric.scale, metric.unit),
                "growth": _shown(growth, metric.scale, metric.unit, signed=True),
            }
        )
    return rows


def chart_data(timeline: Timeline) -> dict[str, Any]:
    """Columns for the chart: seconds, memory (MB), fds, held connections, agents, messages lost, and phase spans.

    Each span is one phase of one round; its label names the round when the run has several.
    """
    samples = timeline.samples
    t_s = [round(timeline.relative_t_s(s), 3) for s in samples]
    phases: list[dict[str, Any]] = []
    rounds = max((s.flap_round for s in samples), default=0) > 1  # name the rounds once there are several
    for t, sample in zip(t_s, samples, strict=True):
        if phases and (phases[-1]["phase"], phases[-1]["round"]) == (sample.phase, sample.flap_round):
            phases[-1]["end_s"] = t
        else:
            if phases:
                phases[-1]["end_s"] = t  # a band reaches the next phase's first sample
            label = f"{sample.phase} {sample.flap_round}" if rounds and sample.flap_round else sample.phase
            phases.append({"phase": sample.phase, "round": sample.flap_round, "label": label, "start_s": t, "end_s": t})
    return {
        "t_s": t_s,
        "rss_mb": [None if s.rss_bytes is None else round(s.rss_bytes / MIB, 3) for s in samples],
        "open_fds": [s.open_fds for s in samples],
        "held_connections": [s.held_connections for s in samples],
        "agents": [s.agents for s in samples],
        "messages_lost": [s.messages_lost for s in samples],
        "phases": phases,
    }
