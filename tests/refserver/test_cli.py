"""Command-line parsing and its exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from refserver.auth import AUTH_TOKEN_ENV
from refserver.cli import ServerConfig, parse_config
from refserver.faults import FaultModes

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    """No arguments means loopback, an ephemeral port, one worker and no faults."""
    assert parse_config([], {}) == ServerConfig()
    assert ServerConfig().faults == FaultModes()
    assert (ServerConfig.host, ServerConfig.port, ServerConfig.max_connections) == ("127.0.0.1", 0, 10_000)


def test_fault_flags_are_parsed() -> None:
    """Every fault flag lands in FaultModes."""
    config = parse_config(
        [
            "--leak-memory-kb",
            "64",
            "--leak-agents-on-drop",
            "--leak-fds",
            "--reject-pct",
            "25",
            "--slow-handshake-ms",
            "100",
        ],
        {},
    )
    assert config.faults == FaultModes(64, True, True, 25, 100)


def test_protocol_defaults_to_echo_and_accepts_app() -> None:
    """--protocol is echo unless app is asked for."""
    assert parse_config([], {}).protocol == "echo"
    assert parse_config(["--protocol", "app"], {}).protocol == "app"


def test_socketio_mode_takes_its_heartbeat_timing() -> None:
    """--protocol socketio, with the ping interval and timeout (Socket.IO's 25 s and 20 s by default)."""
    config = parse_config(["--protocol", "socketio", "--ping-interval-ms", "100", "--ping-timeout-ms", "50"], {})
    assert (config.protocol, config.ping_interval_ms, config.ping_timeout_ms) == ("socketio", 100, 50)
    assert (parse_config([], {}).ping_interval_ms, parse_config([], {}).ping_timeout_ms) == (25_000, 20_000)


@pytest.mark.parametrize(
    "argv",
    [
        ["--protocol", "stomp"],
        ["--ping-interval-ms", "0"],
        ["--reject-pct", "101"],
        ["--reject-pct", "-1"],
        ["--port", "70000"],
        ["--workers", "0"],
        ["--leak-memory-kb", "x"],
        ["--max-connections", "0"],
        ["--unknown"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    """Out-of-range or unknown arguments are a usage error."""
    with pytest.raises(SystemExit) as excinfo:
        parse_config(argv, {})
    assert excinfo.value.code == 2


def test_empty_token_is_a_usage_error() -> None:
    """An empty REFSERVER_AUTH_TOKEN fails instead of silently meaning 'no auth'."""
    with pytest.raises(SystemExit) as excinfo:
        parse_config([], {AUTH_TOKEN_ENV: " "})
    assert excinfo.value.code == 2


def test_token_comes_from_environment_and_stays_out_of_repr() -> None:
    """The token is read from the environment and never shown in the config's repr."""
    config = parse_config([], {AUTH_TOKEN_ENV: "s3cret-token"})
    assert config.auth_token == "s3cret-token"
    assert "s3cret-token" not in repr(config)


def test_module_exits_2_on_bad_arguments() -> None:
    """`python -m refserver` with a bad flag exits 2 with a usage message."""
    result = subprocess.run(
        [sys.executable, "-m", "refserver", "--reject-pct", "150"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--reject-pct" in result.stderr and result.stdout == ""
