"""Observe a server through its Prometheus metrics endpoint, when it runs elsewhere."""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitors.freshness import METRICS_SOURCE
from monitors.sample import ResourceSample, SamplerError

# Sample names (not family names: the parser strips `_total` from counter families).
RSS_METRIC = "process_resident_memory_bytes"
OPEN_FDS_METRIC = "process_open_fds"
CPU_SECONDS_METRIC = "process_cpu_seconds_total"
THREADS_METRICS = ("process_threads", "go_threads")  # the first one present wins

_ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"  # ask for the text format, never protobuf


def redact_url(url: str) -> str:
    """`url` without credentials, query or fragment, which may hold a token; safe to print."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


class PrometheusSampler:
    """Samples rss, open fds, CPU, threads and an optional agents gauge from a metrics URL."""

    def __init__(self, url: str, agents_metric: str | None = None, timeout_s: float = 2.0) -> None:
        self.url = url  # the metrics URL, possibly with a token in its query
        self.agents_metric = agents_metric  # sample name of the per-connection objects gauge
        self.timeout_s = timeout_s  # per socket operation of one scrape
        self._shown_url = redact_url(url)  # what reasons and describe() print
        self._last_cpu: tuple[float, float] | None = None  # (now_s, cpu seconds) of the previous scrape

    @classmethod
    def probe(cls, url: str, agents_metric: str | None = None, timeout_s: float = 2.0) -> PrometheusSampler:
        """Scrape once to validate the URL and the agents metric; SamplerError(fatal) with one line if bad."""
        if not _is_http_url(url):
            raise SamplerError("--server-metrics-url: not an http:// or https:// URL", fatal=True)
        sampler = cls(url, agents_metric, timeout_s)
        label = f"--server-metrics-url {sampler._shown_url}"
        try:
            text = sampler._fetch()
            values, families = _parse(text)
        except SamplerError as exc:
            raise SamplerError(f"{label}: {exc.reason}", fatal=True) from None
        if not values:
            raise SamplerError(f"{label}: does not look like Prometheus text (no samples)", fatal=True)
        if agents_metric is not None and agents_metric not in values and agents_metric not in families:
            raise SamplerError(f"--agents-metric {agents_metric}: not found at the metrics URL", fatal=True)
        return sampler

    source = METRICS_SOURCE  # where its series come from, as the monitor's freshness names it

    @property
    def series(self) -> tuple[str, ...]:
        """The ResourceSample series it measures (agents only with an agents metric)."""
        base = ("rss_bytes", "open_fds", "threads")
        return base if self.agents_metric is None else (*base, "agents")

    def describe(self) -> str:
        """One line: the (redacted) metrics URL and the agents metric, if any."""
        text = f"Prometheus metrics at {self._shown_url}"
        return text if self.agents_metric is None else f"{text}, agents from {self.agents_metric}"

    def sample(self, now_s: float) -> ResourceSample:
        """Scrape once; SamplerError when the endpoint does not answer with Prometheus text."""
        values, families = _parse(self._fetch())
        return ResourceSample(
            t_s=now_s,
            rss_bytes=_as_int(values.get(RSS_METRIC)),
            cpu_pct=self._cpu_pct(now_s, values.get(CPU_SECONDS_METRIC)),
            open_fds=_as_int(values.get(OPEN_FDS_METRIC)),
            threads=_as_int(next((values[name] for name in THREADS_METRICS if name in values), None)),
            agents=self._agents(values, families),
        )

    def _cpu_pct(self, now_s: float, cpu_seconds: float | None) -> float | None:
        """CPU % of one core since the previous scrape; None without a previous reading."""
        previous = self._last_cpu
        self._last_cpu = None if cpu_seconds is None else (now_s, cpu_seconds)
        if previous is None or cpu_seconds is None:
            return None
        dt = now_s - previous[0]
        used = cpu_seconds - previous[1]
        if dt <= 0 or used < 0:  # a restarted server resets its counter
            return None
        return round(used / dt * 100.0, 1)

    def _agents(self, values: Mapping[str, float], families: frozenset[str]) -> int | None:
        if self.agents_metric is None:
            return None
        if self.agents_metric in values:
            return _as_int(values[self.agents_metric])
        # A labelled gauge with no label set yet exports only its HELP and TYPE lines.
        return 0 if self.agents_metric in families else None

    def _fetch(self) -> str:
        """The body of one GET; SamplerError with a one-line reason (no URL) on any failure."""
        request = urllib.request.Request(self.url, headers={"Accept": _ACCEPT})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: bytes = response.read()
                charset = response.headers.get_content_charset() or "utf-8"
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SamplerError(f"HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise SamplerError(self._describe_failure(exc.reason)) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise SamplerError(self._describe_failure(exc)) from None
        return body.decode(charset, errors="replace")

    def _describe_failure(self, error: object) -> str:
        if isinstance(error, (TimeoutError, socket.timeout)):
            return f"no answer within {self.timeout_s:g} s"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, socket.gaierror):
            return "unknown host"
        if isinstance(error, ssl.SSLError):
            return f"TLS error: {error.reason or error}"
        if isinstance(error, http.client.RemoteDisconnected):
            return "connection closed without a response"
        if isinstance(error, http.client.HTTPException):
            return f"bad HTTP response ({type(error).__name__})"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
        return str(error).splitlines()[0] if str(error) else type(error).__name__


def _parse(text: str) -> tuple[dict[str, float], frozenset[str]]:
    """Sums of sample values by sample name, and the family names; SamplerError if not Prometheus text."""
    # The parser reads "<html>" or plain words as errors, but an HTML page can
    # still start with a line it accepts, so a leading "<" is checked first.
    if text.lstrip().startswith("<"):
        raise SamplerError("does not look like Prometheus text (HTML?)")
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError):
        raise SamplerError("does not look like Prometheus text") from None
    return _sum_by_name(sample for family in families for sample in family.samples), frozenset(
        family.name for family in families
    )


def _sum_by_name(samples: Iterable[Sample]) -> dict[str, float]:
    """Sum over label sets; non-finite values (NaN) are skipped as unknown."""
    sums: dict[str, float] = {}
    for sample in samples:
        value = float(sample.value)
        if math.isfinite(value):
            sums[sample.name] = sums.get(sample.name, 0.0) + value
    return sums


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _as_int(value: float | None) -> int | None:
    return None if value is None else int(round(value))
