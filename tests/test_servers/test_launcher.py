"""Every test server starts through one launcher, is found by its port and judged by its /metrics as the pack does."""

from __future__ import annotations

import pytest

from monitors.process_sampler import ProcessTreeSampler
from monitors.prometheus_sampler import PrometheusSampler
from tests.servers import WS_PATHS, AppServerStartError, start_app_server
from tests.test_servers.helpers import DEADLINE_S, connect

ORIGIN_FREE_URL = {"socketio_server": "/socket.io/?EIO=4&transport=websocket"}
LAUNCH_ARGS = {"text_protocols": ("--protocol", "stomp")}  # servers that need an argument to start
# Real servers (aedes and socket.io on Node.js, amqtt in a venv of its own) with metrics of their own,
# tested in their own files (tests/test_mqtt_runs.py, ...).
NODE_SERVERS = frozenset({"mqtt_broker", "socketio_recovery", "amqtt_broker"})


@pytest.mark.parametrize("name", sorted(set(WS_PATHS) - NODE_SERVERS))
def test_server_is_found_by_port_and_metrics_and_stops_cleanly(start_app_server, name: str) -> None:
    """The readiness line names the listening process; --server-port and the agents gauge work; SIGTERM exits 0."""
    server = start_app_server(name, *LAUNCH_ARGS.get(name, ()))
    assert server.stdout_text() == f"app-server ready port={server.port} pid={server.pid}\n"
    assert ProcessTreeSampler.for_port(server.port).pid == server.pid
    sample = PrometheusSampler.probe(server.metrics_url, "app_agents_active").sample(0.0)
    assert sample.agents == 0 and sample.rss_bytes and sample.rss_bytes > 0
    path = ORIGIN_FREE_URL.get(name)
    ws = connect(f"ws://{server.netloc}{path}" if path else server.url)  # a session open at SIGTERM
    assert server.stop(timeout_s=DEADLINE_S) == 0
    ws.shutdown()


def test_bad_arguments_exit_2_with_one_usage_error() -> None:
    """An unknown fault is a usage error: the server exits 2 before listening, and the launcher says so."""
    with pytest.raises(AppServerStartError) as excinfo:
        start_app_server("agent_chat", "--fault", "no-such-fault")
    assert "exited with code 2" in str(excinfo.value)
    assert "invalid choice: 'no-such-fault'" in str(excinfo.value)
    assert "Traceback" not in str(excinfo.value)


def test_unknown_server_name_is_refused() -> None:
    """start_app_server names the servers it knows when given another name."""
    with pytest.raises(ValueError, match="unknown test server 'nope'; known: agent_chat"):
        start_app_server("nope")
