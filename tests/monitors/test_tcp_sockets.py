"""Counting the server's TCP sockets by state, with real sockets on 127.0.0.1 and ::1."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from monitors.tcp_sockets import (
    listening_pids,
    tcp_states_on_port,
    tcp_states_on_port_netlink,
    tcp_states_on_port_proc,
)

# Generous deadline for state changes the kernel makes on its own; polled, so fast machines wait little.
DEADLINE_S = 5.0 * float(os.environ.get("TEST_TIME_SCALE", "1"))

IMPLEMENTATIONS = [tcp_states_on_port, tcp_states_on_port_netlink, tcp_states_on_port_proc]


def wait_for(states: Callable[[], dict[str, int]], accept: Callable[[dict[str, int]], bool]) -> dict[str, int]:
    """Poll `states` until `accept` says yes; fail with the last reading at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        seen = states()
        if accept(seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"TCP states never matched; last seen {seen}")
        time.sleep(0.01)


class Server:
    """A listening socket with the client and server sides of the connections made to it."""

    def __init__(self, host: str, family: socket.AddressFamily) -> None:
        self.listener = socket.create_server((host, 0), family=family)  # the server's accepting socket
        self.host = host  # where clients connect
        self.port: int = self.listener.getsockname()[1]  # the server port under test
        self.clients: list[socket.socket] = []  # client sides, whose REMOTE port is self.port
        self.accepted: list[socket.socket] = []  # server sides, whose LOCAL port is self.port

    def connect(self, n: int) -> None:
        for _ in range(n):
            self.clients.append(socket.create_connection((self.host, self.port)))
            self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        for sock in [*self.clients, *self.accepted, self.listener]:
            sock.close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server("127.0.0.1", socket.AF_INET)
    yield srv
    srv.close()


@pytest.fixture
def server6() -> Iterator[Server]:
    srv = Server("::1", socket.AF_INET6)
    yield srv
    srv.close()


@pytest.mark.parametrize("states_on_port", IMPLEMENTATIONS)
def test_counts_established_server_sides_only(server: Server, states_on_port: Callable[[int], dict[str, int]]) -> None:
    """Each accepted connection counts once as ESTABLISHED; client sides (remote port) are not counted."""
    server.connect(3)
    # Both ends of each loopback connection exist, so counting client sides too would give 6.
    assert states_on_port(server.port) == {"LISTEN": 1, "ESTABLISHED": 3}


@pytest.mark.parametrize("states_on_port", IMPLEMENTATIONS)
def test_counts_ipv6_sockets(server6: Server, states_on_port: Callable[[int], dict[str, int]]) -> None:
    """IPv6 server sockets are counted like IPv4 ones."""
    server6.connect(2)
    assert states_on_port(server6.port) == {"LISTEN": 1, "ESTABLISHED": 2}


@pytest.mark.parametrize("states_on_port", IMPLEMENTATIONS)
def test_client_close_leaves_close_wait(server: Server, states_on_port: Callable[[int], dict[str, int]]) -> None:
    """When the client closes and the server does not, the server side sits in CLOSE_WAIT."""
    server.connect(2)
    server.clients[0].close()
    seen = wait_for(lambda: states_on_port(server.port), lambda s: s.get("CLOSE_WAIT") == 1)
    assert seen.get("ESTABLISHED") == 1


@pytest.mark.parametrize("states_on_port", IMPLEMENTATIONS)
def test_both_closed_is_not_established(server: Server, states_on_port: Callable[[int], dict[str, int]]) -> None:
    """Once both sides close, nothing on the server port is ESTABLISHED or CLOSE_WAIT."""
    server.connect(2)
    for sock in server.clients + server.accepted:
        sock.close()
    wait_for(
        lambda: states_on_port(server.port),
        lambda s: "ESTABLISHED" not in s and "CLOSE_WAIT" not in s and s.get("LISTEN") == 1,
    )


def test_netlink_and_proc_agree(server: Server, server6: Server) -> None:
    """Both implementations report the same states for a mix of stable states."""
    server.connect(4)
    server.clients[0].close()
    server6.connect(1)
    wait_for(lambda: tcp_states_on_port_proc(server.port), lambda s: s.get("CLOSE_WAIT") == 1)
    for port in (server.port, server6.port):
        assert tcp_states_on_port_netlink(port) == tcp_states_on_port_proc(port)


def test_netlink_and_proc_agree_on_many_sockets_in_mixed_states(server: Server) -> None:
    """Hundreds of sockets, ESTABLISHED, CLOSE_WAIT and TIME_WAIT mixed, spanning several netlink batches."""
    server.connect(600)
    for sock in server.accepted[:200] + server.clients[:200]:  # the server closes first: TIME_WAIT on its side
        sock.close()
    for sock in server.clients[200:350]:  # the client closes first: CLOSE_WAIT on the server's side
        sock.close()
    expected = {"LISTEN": 1, "TIME_WAIT": 200, "CLOSE_WAIT": 150, "ESTABLISHED": 250}
    wait_for(lambda: tcp_states_on_port_proc(server.port), lambda s: s == expected)
    assert tcp_states_on_port_netlink(server.port) == expected


def test_port_with_no_sockets_is_empty() -> None:
    """A port nobody uses has no states at all."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    assert tcp_states_on_port_netlink(port) == {}
    assert tcp_states_on_port_proc(port) == {}


def test_listening_pids_finds_this_process(server: Server) -> None:
    """The test process listens on the server port, so its pid is listed."""
    assert listening_pids(server.port) == [os.getpid()]


def test_falls_back_to_proc_when_netlink_is_refused(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox that refuses netlink still gets states, from /proc."""

    def refused(port: int) -> dict[str, int]:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("monitors.tcp_sockets.tcp_states_on_port_netlink", refused)
    server.connect(1)
    assert tcp_states_on_port(server.port) == {"LISTEN": 1, "ESTABLISHED": 1}
