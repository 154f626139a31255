"""Every WebSocket action becomes a Locust request event of type `WS`."""

from __future__ import annotations

import time
from typing import Any

from scenarios.ws_session import WsFailure

REQUEST_TYPE = "WS"


def fire_ws_request(
    environment: Any,
    name: str,
    started: float,
    length: int = 0,
    failure: WsFailure | None = None,
    response_time_ms: float | None = None,
) -> None:
    """Report one action: a row `WS <name>` in stats, CSV and HTML reports.

    The time is from `started` (a `time.perf_counter()` value) to now, unless given.
    """
    environment.events.request.fire(
        request_type=REQUEST_TYPE,
        name=name,
        response_time=(time.perf_counter() - started) * 1000.0 if response_time_ms is None else response_time_ms,
        response_length=length,
        exception=failure,
        context={"generator_limit": True} if failure is not None and failure.generator_limit else {},
    )
