"""The real proxy process between a real WebSocket client and the real reference echo server."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websocket

from faultproxy.launch import start_faultproxy
from faultproxy.toxics import ResetPeer, derive_rng
from refserver.launch import RunningRefServer
from tests.faultproxy.helpers import DEADLINE_S, StartProxy, connect
from tests.support.unavailable import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_pass_through_echo(start_proxy: StartProxy) -> None:
    """With no toxic the proxy is transparent and counts what it moved."""
    proxy = start_proxy()
    ws = connect(proxy)
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.close()
    assert proxy.stop() == 0
    stats = proxy.stderr_text()
    assert "faultproxy stopped: 1 connections accepted, 0 reset, 0 upstream failures" in stats


def test_latency_delays_every_one_way_trip(start_proxy: StartProxy) -> None:
    """At 100 ms per chunk per direction, a handshake and one echo take at least 400 ms."""
    proxy = start_proxy(latency_ms=100)
    started = time.monotonic()
    # 0 ms: handshake request; 100 ms: it reaches the server; 200 ms: the 101 reaches the client;
    # then the message: 300 ms at the server, 400 ms back at the client. Each step waits for the one before.
    ws = connect(proxy)
    ws.send("ping")
    assert ws.recv() == "ping"
    elapsed = time.monotonic() - started
    ws.close()
    assert elapsed >= 0.4 - 0.01  # slack for clock granularity only


def test_jitter_keeps_the_byte_stream_in_order(start_proxy: StartProxy) -> None:
    """Messages sent back to back through 20 ± 20 ms of jitter come back intact and in order."""
    proxy = start_proxy(latency_ms=20, jitter_ms=20, seed=3)
    ws = connect(proxy)
    messages = [f"message {index} " * (index % 7 + 1) for index in range(100)]
    for message in messages:
        ws.send(message)
    received = [ws.recv() for _ in messages]
    ws.close()
    # A reordered chunk would corrupt the WebSocket framing, not just swap two messages.
    assert received == messages


def test_bandwidth_limits_each_direction(start_proxy: StartProxy) -> None:
    """A 16 KiB echo at 16 KiB/s takes at least 2 s: 1 s up, then 1 s back down."""
    proxy = start_proxy(bandwidth_kbps=16)
    ws = connect(proxy)
    payload = bytes(range(256)) * 64  # 16 KiB
    started = time.monotonic()
    # 0 s: the client writes 16 KiB; 1 s: the last byte reaches the server, which echoes the whole message;
    # 2 s: the last byte of the echo reaches the client.
    ws.send_binary(payload)
    assert ws.recv() == payload
    elapsed = time.monotonic() - started
    ws.close()
    assert elapsed >= 2.0 - 0.05  # the frame header adds a few bytes on top


def test_reset_pct_100_resets_the_handshake(start_proxy: StartProxy) -> None:
    """Every handshake is answered with a TCP reset, and no byte reaches the server."""
    proxy = start_proxy(reset_pct=100)
    for _ in range(3):
        with pytest.raises(ConnectionResetError):
            connect(proxy)
    assert proxy.stop() == 0
    assert "3 connections accepted, 3 reset, 0 upstream failures, 0 bytes to upstream" in proxy.stderr_text()


def test_reset_is_a_tcp_rst(start_proxy: StartProxy) -> None:
    """A raw socket sees ECONNRESET, not an orderly EOF, once its first bytes arrive."""
    proxy = start_proxy(reset_pct=100)
    with socket.create_connection((proxy.host, proxy.port), timeout=DEADLINE_S) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            raw.recv(1)


def test_reset_after_ms_drops_an_open_websocket(start_proxy: StartProxy) -> None:
    """With --reset-after-ms 300 the WebSocket opens and echoes, then is reset at least 300 ms after it dialled."""
    proxy = start_proxy(reset_pct=100, reset_after_ms=300)
    started = time.monotonic()
    # 0 ms: handshake request (the reset clock starts); handshake and echo pass; 300 ms: RST.
    ws = connect(proxy)
    ws.send("still here")
    assert ws.recv() == "still here"
    with pytest.raises(ConnectionResetError):
        ws.recv()
    assert time.monotonic() - started >= 0.3 - 0.01
    ws.shutdown()


def test_reset_pct_0_never_resets(start_proxy: StartProxy) -> None:
    """At 0 % every one of 20 connections opens and echoes."""
    proxy = start_proxy(reset_pct=0)
    for index in range(20):
        ws = connect(proxy)
        ws.send(str(index))
        assert ws.recv() == str(index)
        ws.close()


def test_seeded_resets_repeat(start_proxy: StartProxy) -> None:
    """With a seed, which of 20 sequential connections get reset is exactly what the pure decision says."""
    proxy = start_proxy(reset_pct=50, seed=42)
    rng = derive_rng(42, "reset")
    expected = [ResetPeer(pct=50).chooses(rng) for _ in range(20)]
    observed = []
    for _ in range(20):
        try:
            connect(proxy).close()
            observed.append(False)
        except ConnectionResetError:
            observed.append(True)
    assert observed == expected
    assert 0 < sum(observed) < 20


def test_unreachable_upstream_closes_the_client() -> None:
    """With nothing listening upstream the client is closed and the failure is counted."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        free_port = unused.getsockname()[1]
    with start_faultproxy("127.0.0.1", free_port) as proxy:
        with pytest.raises((ConnectionError, websocket.WebSocketException)):
            connect(proxy)
        proxy.stop()
    assert "1 upstream failures" in proxy.stderr_text()


def test_ipv6_loopback(echo_server: RunningRefServer) -> None:
    """The proxy listens on ::1 when asked to."""
    if not socket.has_ipv6:
        unavailable("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        unavailable("::1 not configured")
    with start_faultproxy(echo_server.host, echo_server.port, listen_host="::1") as proxy:
        assert proxy.netloc == f"[::1]:{proxy.port}"
        ws = connect(proxy)
        ws.send("six")
        assert ws.recv() == "six"
        ws.close()


@pytest.mark.parametrize("address_flag", ["--upstream", "--listen"])
def test_non_loopback_address_is_refused(address_flag: str) -> None:
    """A non-loopback address makes the process exit 2 with one stderr line and no readiness line."""
    argv = {
        "--upstream": ["--upstream", "10.1.2.3:80"],
        "--listen": ["--upstream", "127.0.0.1:80", "--listen", "0.0.0.0:0"],
    }
    result = subprocess.run(
        [sys.executable, "-m", "faultproxy", *argv[address_flag]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S * 2,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "not a loopback address" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_open_connections(start_proxy: StartProxy, sig: signal.Signals) -> None:
    """SIGTERM or SIGINT ends the proxy with exit 0, open connections included, and logs the stats."""
    proxy = start_proxy(latency_ms=50)
    ws = connect(proxy)
    started = time.monotonic()
    proxy.process.send_signal(sig)
    assert proxy.process.wait(DEADLINE_S) == 0
    assert time.monotonic() - started < DEADLINE_S
    ws.shutdown()
    assert "faultproxy stopped: 1 connections accepted" in proxy.stderr_text()
    assert "Traceback" not in proxy.stderr_text()
