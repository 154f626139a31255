"""The pack in Locust's web UI: a "Server resources" tab, JSON and CSV downloads, the chart.

Locust 2.47 lets a locustfile add tabs through `web_ui.template_args` (`extended_tabs`,
`extended_tables`, `extended_csv_files`) and fill them from `extended_stats` in the
`/stats/requests` answer, but such a tab can only show one table. So the tab is Locust's
own, with the baseline/now/growth table, and `static/tab.js` (added to the index page) puts
the phase, the verdict, the checks, the chart and the download links under it.

Routes, all under `--web-base-path` and behind `--web-login` when it is on:
`/flapping-pack/status.json` (live status), `/flapping-pack/timeline.json` (chart data),
`/flapping-pack/resources.csv` (the timeline) and `/flapping-pack/verdict.json` (404 until
the verdict is made).
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, make_response, request
from werkzeug.datastructures import ImmutableMultiDict

from monitors.verdict_report import timeline_csv_rows
from pack import html_report
from pack.options import SECRET_DESTS
from pack.resource_view import TABLE_STRUCTURE, chart_data, latest_levels, resource_rows

if TYPE_CHECKING:
    from locust.env import Environment
    from locust.web import WebUI

    from pack.judge import RunView

TAB_KEY = "server-resources"  # the tab's key, also `?tab=` in the UI's URL
TAB_TITLE = "Server resources"
ROUTE_PREFIX = "/flapping-pack"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_SECRET_HINT = " (leave blank to keep the value Locust was started with)"


def live_status(view: RunView) -> dict[str, Any]:
    """`view.status()` plus the latest sample's levels and the tab's table rows."""
    status = view.status()
    timeline = view.timeline
    latest = latest_levels(timeline)
    status["latest"] = latest
    status["resources"] = resource_rows(timeline.baseline(), latest)
    return status


def hide_secrets(extra_options: dict[str, dict[str, Any]]) -> None:
    """Blank the values of secret options in the UI's custom parameters (Locust shows them as given)."""
    for name, option in extra_options.items():
        if option.get("is_secret") or name in SECRET_DESTS:
            option["is_secret"] = True
            option["default_value"] = ""
            if _SECRET_HINT not in (option.get("help_text") or ""):
                option["help_text"] = (option.get("help_text") or "") + _SECRET_HINT


# --- wiring into Locust's web UI ----------------------------------------------------------


def _attachment(body: str, mimetype: str, filename: str) -> Response:
    response = make_response(body)
    response.mimetype = mimetype
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    response.headers["Cache-Control"] = "no-store"
    return response


def install(environment: Environment, web_ui: WebUI, view: RunView) -> None:
    """Add the pack's routes, tab, downloads and chart to Locust's web UI (master or local runner)."""
    app = web_ui.app
    assert app is not None  # Locust creates its Flask app before it fires init with the web UI
    options = environment.parsed_options
    base_path = (getattr(options, "web_base_path", "") or "").rstrip("/")

    blueprint = Blueprint(
        "flapping_pack",
        __name__,
        url_prefix=base_path + ROUTE_PREFIX,
        static_folder=STATIC_DIR,
        static_url_path="/static",
    )

    @blueprint.route("/status.json")
    @web_ui.auth_required_if_enabled
    def status_json() -> Response:
        response = jsonify(live_status(view))
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.route("/timeline.json")
    @web_ui.auth_required_if_enabled
    def timeline_json() -> Response:
        response = jsonify(chart_data(view.timeline))
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.route("/resources.csv")
    @web_ui.auth_required_if_enabled
    def resources_csv() -> Response:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(timeline_csv_rows(view.timeline))
        return _attachment(buffer.getvalue(), "text/csv", "flapping-pack-resources.csv")

    @blueprint.route("/verdict.json")
    @web_ui.auth_required_if_enabled
    def verdict_json() -> Response:
        report = view.final_report()
        if report is None:
            response = jsonify(
                {
                    "error": "no verdict yet: it is made when the test stops",
                    "phase": view.phase,
                    "status": "./status.json",
                }
            )
            response.status_code = 404
            response.headers["Cache-Control"] = "no-store"
            return response
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        return _attachment(text, "application/json", "flapping-pack-verdict.json")

    app.register_blueprint(blueprint)

    # The tab, its table and the downloads, through Locust's own extension points.
    web_ui.template_args["extended_tabs"] = [{"title": TAB_TITLE, "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": TABLE_STRUCTURE}]
    web_ui.template_args["extended_csv_files"] = [
        {"href": f".{ROUTE_PREFIX}/resources.csv", "title": "Download server resource timeline CSV (flapping-pack)"},
        {"href": f".{ROUTE_PREFIX}/verdict.json", "title": "Download verdict JSON (flapping-pack)"},
    ]

    # Locust puts every custom parameter's value, secrets included, into the index page.
    locust_update_template_args = web_ui.update_template_args

    def update_template_args() -> None:
        locust_update_template_args()
        hide_secrets(web_ui.template_args.get("extra_options") or {})

    web_ui.update_template_args = update_template_args  # type: ignore[method-assign]
    update_template_args()

    @app.before_request
    def keep_secrets_left_blank() -> None:
        # The form sends the (blanked) secret back empty: keep the value given at start-up.
        if request.endpoint != "locust.swarm" or request.method != "POST":
            return
        form = request.form
        if any(name in form and not form.get(name) for name in SECRET_DESTS):
            kept = [(k, v) for k, v in form.items(multi=True) if not (k in SECRET_DESTS and not v)]
            request.form = ImmutableMultiDict(kept)  # type: ignore[misc]

    @app.after_request
    def extend_responses(response: Response) -> Response:
        endpoint = request.endpoint
        if response.status_code != 200:
            return response
        if endpoint == "locust.request_stats" and response.is_json:
            data = response.get_json()
            if isinstance(data, dict):
                timeline = view.timeline
                rows = resource_rows(timeline.baseline(), latest_levels(timeline))
                data["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
                response.set_data(json.dumps(data))
        elif endpoint == "locust.index" and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            static = f".{ROUTE_PREFIX}/static"
            tags = (
                f'<link rel="stylesheet" href="{static}/vendor/uplot/uPlot.min.css">'
                f'<link rel="stylesheet" href="{static}/tab.css">'
                f'<script defer src="{static}/vendor/uplot/uPlot.iife.min.js"></script>'
                f'<script defer src="{static}/chart.js"></script>'
                f'<script defer src="{static}/tab.js"></script>'
            )
            response.set_data(html_report.insert_before_body_end(page, tags))
        elif endpoint == "locust.stats_report" and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            response.set_data(html_report.insert_before_body_end(page, html_report.report_section(view)))
        return response
