"""What the web UI tab and the HTML report show: table rows, chart columns, page insertion."""

from __future__ import annotations

from typing import Any

from monitors.checks import MIB
from monitors.sample import PHASE_BASELINE, PHASE_FLAPPING, PHASE_SETTLE, ResourceSample
from monitors.timeline import Timeline
from pack.html_report import insert_before_body_end
from pack.resource_view import chart_data, latest_levels, resource_rows


def sample(t_s: float, phase: str = PHASE_BASELINE, **fields: Any) -> ResourceSample:
    return ResourceSample(t_s=t_s, phase=phase, **fields)


def test_latest_levels_keep_each_metrics_last_known_value() -> None:
    """A metric missing from the newest sample shows its previous value."""
    latest = latest_levels([sample(1.0, rss_bytes=10, open_fds=5), sample(2.0, open_fds=6)])
    assert latest["rss_bytes"] == 10
    assert latest["open_fds"] == 6
    assert latest["agents"] is None


def test_rows_show_baseline_now_and_signed_growth_in_display_units() -> None:
    """Memory is in MB, growth is signed, unknown values are a dash."""
    timeline = Timeline([sample(0.0, rss_bytes=100 * MIB, open_fds=10, tcp_states={"ESTABLISHED": 0})])
    latest = {"rss_bytes": 102 * MIB + MIB // 2, "open_fds": 9, "threads": None, "held_connections": 3, "agents": 1}
    rows = {row["metric"]: row for row in resource_rows(timeline.baseline(), latest)}
    memory = rows["Memory (RSS)"]
    assert (memory["baseline"], memory["now"], memory["growth"]) == ("100 MB", "102.5 MB", "+2.5 MB")
    assert rows["Open fds"]["growth"] == "-1"
    assert rows["Held connections"]["growth"] == "+3"
    assert rows["Threads"] == {"metric": "Threads", "baseline": "-", "now": "-", "growth": "-"}
    assert rows["Agents"]["growth"] == "-"  # no baseline


def test_growth_that_rounds_to_zero_has_no_sign() -> None:
    """A few bytes of growth show as 0 MB, not +0 MB."""
    timeline = Timeline([sample(0.0, rss_bytes=100 * MIB)])
    rows = resource_rows(timeline.baseline(), {"rss_bytes": 100 * MIB + 10})
    assert rows[0]["growth"] == "0 MB"


def test_chart_columns_and_phase_bands() -> None:
    """One column per series from the first sample on; each phase band reaches the next phase."""
    timeline = Timeline(
        [
            sample(10.0, rss_bytes=2 * MIB, open_fds=7),
            sample(10.5, rss_bytes=3 * MIB, open_fds=7),
            sample(11.0, PHASE_FLAPPING, rss_bytes=4 * MIB, open_fds=9, tcp_states={"ESTABLISHED": 2}, agents=2),
            sample(11.5, PHASE_SETTLE, open_fds=7, tcp_states={"ESTABLISHED": 0, "TIME_WAIT": 2}, agents=0),
            sample(12.0, PHASE_SETTLE, rss_bytes=3 * MIB, open_fds=7),
        ]
    )
    data = chart_data(timeline)
    assert data["t_s"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert data["rss_mb"] == [2.0, 3.0, 4.0, None, 3.0]
    assert data["open_fds"] == [7, 7, 9, 7, 7]
    assert data["held_connections"] == [None, None, 2, 0, None]
    assert data["agents"] == [None, None, 2, 0, None]
    assert data["phases"] == [
        {"phase": "baseline", "round": 0, "label": "baseline", "start_s": 0.0, "end_s": 1.0},
        {"phase": "flapping", "round": 0, "label": "flapping", "start_s": 1.0, "end_s": 1.5},
        {"phase": "settle", "round": 0, "label": "settle", "start_s": 1.5, "end_s": 2.0},
    ]


def test_chart_bands_name_each_round() -> None:
    """With two rounds, each round's flapping and settle get a band of their own, named with the round."""
    timeline = Timeline(
        [
            sample(0.0, rss_bytes=2 * MIB),
            sample(1.0, PHASE_FLAPPING, flap_round=1, rss_bytes=9 * MIB),
            sample(2.0, PHASE_SETTLE, flap_round=1, rss_bytes=5 * MIB),
            sample(3.0, PHASE_FLAPPING, flap_round=2, rss_bytes=9 * MIB),
            sample(4.0, PHASE_SETTLE, flap_round=2, rss_bytes=5 * MIB),
        ]
    )
    labels = [(p["label"], p["start_s"], p["end_s"]) for p in chart_data(timeline)["phases"]]
    assert labels == [
        ("baseline", 0.0, 1.0),
        ("flapping 1", 1.0, 2.0),
        ("settle 1", 2.0, 3.0),
        ("flapping 2", 3.0, 4.0),
        ("settle 2", 4.0, 4.0),
    ]


def test_the_chart_has_a_series_of_lost_stream_messages() -> None:
    """Samples tagged with the users' lost stream messages so far give the chart its series; None without a stream."""
    timeline = Timeline([sample(0.0), sample(1.0, PHASE_FLAPPING, messages_lost=3), sample(2.0, PHASE_SETTLE)])
    assert chart_data(timeline)["messages_lost"] == [None, 3, None]


def test_chart_of_no_samples_is_empty() -> None:
    """Before the first sample the chart has empty columns and no phases."""
    data = chart_data(Timeline())
    assert data["t_s"] == [] and data["phases"] == []


def test_fragments_go_before_the_last_body_end_and_only_into_pages() -> None:
    """The fragment lands before the closing body tag; text that is no page is left alone."""
    page = "<html><body><p>x</p></body></html>"
    assert insert_before_body_end(page, "<b>y</b>") == "<html><body><p>x</p><b>y</b></body></html>"
    assert insert_before_body_end("Locust auth exception", "<b>y</b>") == "Locust auth exception"
