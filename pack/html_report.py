"""The pack's section in Locust's HTML report: the verdict table and the resource chart.

Locust writes `--html` after the run ends and before `quitting`/`quit` fire (locust/main.py:
`main_greenlet.join()`, `save_html_report()`, `shutdown()`), so the section is added to the
written file at `quit`, when the verdict is certainly made. The section is self-contained:
uPlot, its CSS, the chart script and the data are inlined, so the file works offline.
The web UI's "Download Report" gets the same section (pack/web_ui.py).
"""

from __future__ import annotations

import html
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from monitors.verdict_report import render_table
from pack.resource_view import chart_data

if TYPE_CHECKING:
    from locust.env import Environment

    from pack.judge import RunView

logger = logging.getLogger("flapping_pack")

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
SECTION_ID = "flapping-pack-report"  # marks the section; a report holds it at most once
_MTIME_SLACK_S = 2.0  # coarse file system clocks


def _static(name: str) -> str:
    with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as f:
        return f.read()


def _inline_script(code: str) -> str:
    """A <script> element whose content cannot close it early."""
    return "<script>" + code.replace("</", "<\\/") + "</script>"


def _json_for_html(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def insert_before_body_end(page: str, fragment: str) -> str:
    """`page` with `fragment` inserted before its last </body>; unchanged when it has none (not a page)."""
    index = page.rfind("</body>")
    if index < 0:
        return page
    return page[:index] + fragment + page[index:]


def report_section(view: RunView) -> str:
    """The section: verdict line and table, then the chart with its data and library inlined."""
    timeline = view.timeline
    final = view.verdict is not None
    verdict = view.live_verdict()
    state = "fp-pass" if verdict.passed else "fp-fail"
    heading = "Verdict" if final else "Checks so far (the test has not ended; no verdict yet)"
    render = (
        "window.addEventListener('load', function () {"
        "var data = JSON.parse(document.getElementById('flapping-pack-data').textContent);"
        "var box = document.getElementById('flapping-pack-chart');"
        "if (!data.t_s.length) { box.textContent = 'No samples.'; return; }"
        "var color = getComputedStyle(box).color || '#333';"
        "window.flappingPackChart.render(box, data, {text: color});"
        "});"
    )
    parts = [
        f'<section id="{SECTION_ID}">',
        "<style>" + _static("vendor/uplot/uPlot.min.css") + _static("tab.css") + "</style>",
        "<h2>flapping-pack: server resources</h2>",
        f'<div class="fp-verdict {state}">VERDICT: {html.escape(verdict.summary())}'
        + ("" if final else " (so far)")
        + "</div>",
        f"<h3>{html.escape(heading)}</h3>",
        f'<pre class="fp-verdict-table">{html.escape(render_table(verdict))}</pre>',
        "<h3>Memory, fds, connections and agents over time</h3>",
        '<div class="fp-chart" id="flapping-pack-chart"></div>',
        '<script type="application/json" id="flapping-pack-data">' + _json_for_html(chart_data(timeline)) + "</script>",
        _inline_script(_static("vendor/uplot/uPlot.iife.min.js")),
        _inline_script(_static("chart.js")),
        _inline_script(render),
        "</section>",
    ]
    return "\n".join(parts)


def add_section_to_file(view: RunView, path: str) -> bool:
    """Add the section to the report Locust wrote at `path`; False when it has one or is no page."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    if f'id="{SECTION_ID}"' in page:
        return False
    extended = insert_before_body_end(page, report_section(view))
    if extended == page:
        return False
    with open(path, "w", encoding="utf-8") as f:
        f.write(extended)
    return True


def register(environment: Environment, view: RunView) -> None:
    """Add the pack's section to the `--html` report once Locust has written it (master/local only)."""
    options = environment.parsed_options
    if options is None or not getattr(options, "html_file", None):
        return
    started_s = time.time()  # a report older than this is a previous run's

    def on_quit(**_kwargs: Any) -> None:
        path = options.html_file  # Locust has replaced {u}, {r}, {t} by now
        if not path or not os.path.isfile(path):
            return
        if os.path.getmtime(path) < started_s - _MTIME_SLACK_S:
            logger.warning("flapping-pack: %s was not written by this run; not adding the verdict to it", path)
            return
        try:
            add_section_to_file(view, path)
        except OSError as error:
            logger.error("flapping-pack: could not add the verdict to %s: %s", path, error.strerror)

    environment.events.quit.add_listener(on_quit)
