"""PrometheusSampler against a real HTTP server on 127.0.0.1 whose answers each test sets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitors.prometheus_sampler import PrometheusSampler, redact_url
from monitors.sample import SamplerError

METRICS = """\
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 5.24288e+07
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 42.0
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
# HELP go_threads Number of OS threads created.
# TYPE go_threads gauge
go_threads 9
# HELP ws_agents Live per-connection objects.
# TYPE ws_agents gauge
ws_agents{{room="a"}} 3
ws_agents{{room="b"}} 4
"""


@dataclass
class Answer:
    """What the test server answers to the next requests."""

    body: str = METRICS.format(cpu=10.0)  # response body
    status: int = 200  # HTTP status code
    delay_s: float = 0.0  # wait before answering, to provoke timeouts


class MetricsServer:
    """A ThreadingHTTPServer serving `answer`, with the paths it was asked for."""

    def __init__(self) -> None:
        self.answer = Answer()  # what every request gets; tests replace it
        self.paths: list[str] = []  # request paths, query included
        self.release = threading.Event()  # cuts a delayed answer short at teardown
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = owner.answer
                owner.paths.append(self.path)
                owner.release.wait(answer.delay_s)
                body = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the real server
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"  # its metrics URL
        # A short poll interval, because shutdown() waits for the serving loop to notice.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)  # serves requests
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    srv = MetricsServer()
    yield srv
    srv.close()


def closed_port() -> int:
    """A port that was just free on 127.0.0.1, so connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_maps_process_metrics(server: MetricsServer) -> None:
    """Standard process metrics map to rss, open fds and threads; agents sum over label sets."""
    sample = PrometheusSampler(server.url, agents_metric="ws_agents").sample(3.0)
    assert sample.t_s == 3.0
    assert sample.alive
    assert sample.rss_bytes == 52_428_800
    assert sample.open_fds == 42
    assert sample.threads == 9
    assert sample.agents == 7
    assert sample.cpu_pct is None  # no previous scrape yet
    assert sample.pid is None and sample.tcp_states is None


def test_cpu_pct_from_two_scrapes(server: MetricsServer) -> None:
    """CPU % is the counter's increase over the time between the two samples."""
    sampler = PrometheusSampler(server.url)
    sampler.sample(100.0)
    server.answer = Answer(body=METRICS.format(cpu=10.5))
    # 0.5 CPU seconds over 2 s of sampling time is 25 % of one core.
    assert sampler.sample(102.0).cpu_pct == 25.0


def test_cpu_counter_reset_is_unknown(server: MetricsServer) -> None:
    """A counter that went down (server restarted) gives no CPU figure instead of a negative one."""
    sampler = PrometheusSampler(server.url)
    sampler.sample(0.0)
    server.answer = Answer(body=METRICS.format(cpu=1.0))
    assert sampler.sample(1.0).cpu_pct is None


def test_missing_metrics_are_unknown(server: MetricsServer) -> None:
    """Metrics the endpoint does not export stay None, and an unlabelled-yet agents gauge counts 0."""
    server.answer = Answer(body="# TYPE ws_agents gauge\nprocess_threads 4\nsome_other_metric 1\n")
    sample = PrometheusSampler(server.url, agents_metric="ws_agents").sample(0.0)
    assert (sample.rss_bytes, sample.open_fds, sample.cpu_pct) == (None, None, None)
    assert sample.threads == 4
    assert sample.agents == 0


def test_scrape_failure_raises_without_the_query(server: MetricsServer) -> None:
    """A failing scrape is a non-fatal SamplerError whose reason does not leak the URL's token."""
    server.answer = Answer(status=500, body="oops")
    with pytest.raises(SamplerError) as caught:
        PrometheusSampler(server.url + "?token=s3cret").sample(0.0)
    assert caught.value.reason == "HTTP 500"
    assert not caught.value.fatal
    assert server.paths == ["/metrics?token=s3cret"]


def test_refused_scrape_raises() -> None:
    """A scrape of a port nobody listens on says the connection was refused."""
    sampler = PrometheusSampler(f"http://127.0.0.1:{closed_port()}/metrics")
    with pytest.raises(SamplerError, match="^connection refused$"):
        sampler.sample(0.0)


def test_slow_scrape_times_out(server: MetricsServer) -> None:
    """An endpoint slower than timeout_s fails within about timeout_s."""
    server.answer = Answer(delay_s=5.0)
    sampler = PrometheusSampler(server.url, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(SamplerError) as caught:
        sampler.sample(0.0)
    assert time.monotonic() - started < 2.0
    assert caught.value.reason == "no answer within 0.3 s"


def test_probe_accepts_prometheus_text(server: MetricsServer) -> None:
    """A valid endpoint and a present agents metric give a ready sampler."""
    sampler = PrometheusSampler.probe(server.url + "?token=s3cret", agents_metric="ws_agents")
    assert sampler.describe() == f"Prometheus metrics at {server.url}, agents from ws_agents"
    assert sampler.sample(0.0).agents == 7


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/metrics", "127.0.0.1:9100/metrics", "http://", "http://h:x/"])
def test_probe_rejects_non_http_urls(url: str) -> None:
    """A URL that is not http(s) with a host fails before any request."""
    with pytest.raises(SamplerError) as caught:
        PrometheusSampler.probe(url)
    assert caught.value.fatal
    assert caught.value.reason == "--server-metrics-url: not an http:// or https:// URL"


def test_probe_rejects_404(server: MetricsServer) -> None:
    """A wrong path fails with the HTTP status."""
    server.answer = Answer(status=404, body="not found")
    with pytest.raises(SamplerError) as caught:
        PrometheusSampler.probe(server.url + "?token=s3cret")
    assert caught.value.fatal
    assert caught.value.reason == f"--server-metrics-url {server.url}: HTTP 404"


@pytest.mark.parametrize(
    "body",
    [
        "<!DOCTYPE html>\n<html><body>Grafana</body></html>\n",
        "<html>\nmetric 1\n</html>\n",
        "Hello, this is the server.\n",
        "",
        "# only a comment\n",
    ],
)
def test_probe_rejects_what_is_not_prometheus_text(server: MetricsServer, body: str) -> None:
    """HTML, prose and empty pages are not taken for metrics."""
    server.answer = Answer(body=body)
    with pytest.raises(SamplerError) as caught:
        PrometheusSampler.probe(server.url)
    assert caught.value.fatal
    assert caught.value.reason.startswith(f"--server-metrics-url {server.url}: does not look like Prometheus text")


def test_probe_rejects_unreachable_url() -> None:
    """A refused connection fails at startup, fatally."""
    url = f"http://127.0.0.1:{closed_port()}/metrics"
    with pytest.raises(SamplerError) as caught:
        PrometheusSampler.probe(url)
    assert caught.value.fatal
    assert caught.value.reason == f"--server-metrics-url {url}: connection refused"


def test_probe_rejects_missing_agents_metric(server: MetricsServer) -> None:
    """An agents metric that the endpoint does not export fails at startup, naming the option."""
    with pytest.raises(SamplerError) as caught:
        PrometheusSampler.probe(server.url, agents_metric="foo")
    assert caught.value.fatal
    assert caught.value.reason == "--agents-metric foo: not found at the metrics URL"


def test_redact_url_drops_secrets() -> None:
    """Credentials, query and fragment never reach a printed URL."""
    assert redact_url("https://user:pw@example.com:8443/m?token=x#frag") == "https://example.com:8443/m"
