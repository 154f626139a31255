"""Counting the server's TCP sockets by state, with real sockets on 127.0.0.1 and ::1."""

from __future__ import annotations

import _socket
import os
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator

import psutil
import pytest

from monitors.tcp_sockets import (
    ONLY_LISTEN,
    TCP_STATE_NAMES,
    WITHOUT_TIME_WAIT,
    diag_request,
    listening_pids,
    reply_states,
    states_by_pattern,
    states_per_message,
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


def _clean_listener(host: str, family: socket.AddressFamily) -> socket.socket:
    """A listener on a port no other socket uses in any state.

    The kernel may hand out a port that an earlier connection of the suite still holds in
    TIME_WAIT (as its local port): counts by port would include it.
    """
    for _ in range(50):
        listener = socket.create_server((host, 0), family=family)
        if tcp_states_on_port_proc(listener.getsockname()[1]) == {"LISTEN": 1}:
            return listener
        listener.close()
    pytest.fail("no port free of other sockets in 50 tries")


class Server:
    """A listening socket with the client and server sides of the connections made to it."""

    def __init__(self, host: str, family: socket.AddressFamily) -> None:
        self.listener = _clean_listener(host, family)  # the server's accepting socket
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


def mix_states(server: Server, time_wait: int, close_wait: int, established: int) -> dict[str, int]:
    """Open connections to `server` and close some so its port shows these states; returns the expected counts."""
    server.connect(time_wait + close_wait + established)
    for sock in server.accepted[:time_wait] + server.clients[:time_wait]:  # the server closes first: TIME_WAIT
        sock.close()
    for sock in server.clients[time_wait : time_wait + close_wait]:  # the client closes first: CLOSE_WAIT
        sock.close()
    expected = {"LISTEN": 1, "TIME_WAIT": time_wait, "CLOSE_WAIT": close_wait, "ESTABLISHED": established}
    wait_for(lambda: tcp_states_on_port_proc(server.port), lambda s: s == expected)
    return expected


def test_netlink_and_proc_agree_on_many_sockets_in_mixed_states(server: Server) -> None:
    """Hundreds of sockets, ESTABLISHED, CLOSE_WAIT and TIME_WAIT mixed, spanning several netlink batches."""
    expected = mix_states(server, time_wait=200, close_wait=150, established=250)
    assert tcp_states_on_port_netlink(server.port) == expected


@pytest.mark.parametrize("states_on_port", IMPLEMENTATIONS)
def test_a_mask_of_states_leaves_the_others_out(server: Server, states_on_port) -> None:
    """The monitor's mask counts every state but TIME_WAIT; a LISTEN-only mask counts the listener alone."""
    expected = mix_states(server, time_wait=20, close_wait=3, established=5)
    without_time_wait = {state: n for state, n in expected.items() if state != "TIME_WAIT"}
    assert states_on_port(server.port, WITHOUT_TIME_WAIT) == without_time_wait
    assert states_on_port(server.port, ONLY_LISTEN) == {"LISTEN": 1}


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

    def refused(port: int, states: int) -> dict[str, int]:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("monitors.tcp_sockets.tcp_states_on_port_netlink", refused)
    server.connect(1)
    assert tcp_states_on_port(server.port) == {"LISTEN": 1, "ESTABLISHED": 1}


# --- the two ways of counting a reply: by regex over a whole datagram, and message by message ---

SEQ = 7  # the sequence number of the dumps these tests make
SOCKET_MESSAGE = 18  # TCPDIAG_GETSOCK: the type of the request and of each socket message of its reply


def dump_datagrams(port: int) -> list[bytes]:
    """The raw datagrams of one real dump of the sockets on `port`, up to the one that ends it."""
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, 4)
    sock.settimeout(5.0)
    try:
        sock.sendto(diag_request(port, SEQ), (0, 0))
        datagrams = [sock.recv(65536)]
        while not states_per_message(datagrams[-1], SEQ)[1]:
            datagrams.append(sock.recv(65536))
    finally:
        sock.close()
    return datagrams


def socket_message(length: int, state: int, seq: int = SEQ, payload: bytes = b"") -> bytes:
    """A hand-built socket message of `length` bytes: header, family AF_INET, `state`, then `payload`, zero-padded."""
    head = struct.pack("=IHHII", length, SOCKET_MESSAGE, 2, seq, 4321) + bytes([socket.AF_INET, state])
    return (head + payload).ljust(length, b"\0")


def done_message(code: int = 0, seq: int = SEQ) -> bytes:
    """NLMSG_DONE ending dump `seq`, with the dump's error `code` (0: complete)."""
    return struct.pack("=IHHIIi", 20, 3, 2, seq, 4321, code)


def psutil_states(port: int) -> dict[str, int]:
    """psutil's count of the TCP sockets whose local port is `port`, by state."""
    return dict(Counter(c.status for c in psutil.net_connections(kind="tcp") if c.laddr and c.laddr.port == port))


def test_pattern_and_per_message_counting_agree_on_a_real_dump(server: Server) -> None:
    """Every datagram of a real dump of mixed states counts the same both ways, and the total is psutil's."""
    expected = mix_states(server, time_wait=300, close_wait=100, established=500)
    datagrams = dump_datagrams(server.port)
    assert len(datagrams) >= 3
    lengths = tuple(sorted(set().union(*(states_per_message(d, SEQ)[2] for d in datagrams))))
    assert len(lengths) >= 2  # TIME_WAIT messages are shorter than full sockets'
    total: Counter[int] = Counter()
    for datagram in datagrams:
        one_by_one, done, _ = states_per_message(datagram, SEQ)
        end = len(datagram) - 20 if done else len(datagram)
        assert states_by_pattern(datagram, end, SEQ, lengths) == one_by_one
        total += one_by_one
    assert {TCP_STATE_NAMES[state]: n for state, n in total.items()} == expected
    assert tcp_states_on_port_netlink(server.port) == expected
    assert psutil_states(server.port) == expected


def test_one_dump_counts_ipv4_and_ipv6_listeners_on_the_same_port() -> None:
    """Servers listening on 127.0.0.1 and ::1 with the same port are both counted, in one dump."""
    v6 = Server("::1", socket.AF_INET6)
    v4 = socket.create_server(("127.0.0.1", v6.port))
    try:
        v6.connect(2)
        client = socket.create_connection(("127.0.0.1", v6.port))
        accepted = v4.accept()[0]
        expected = {"LISTEN": 2, "ESTABLISHED": 3}
        assert tcp_states_on_port_netlink(v6.port) == expected
        assert tcp_states_on_port_proc(v6.port) == expected
        client.close()
        accepted.close()
    finally:
        v4.close()
        v6.close()


def test_reply_states_learns_lengths_then_counts_by_pattern() -> None:
    """A first datagram goes message by message and teaches the lengths; the next, by pattern, counts the same."""
    first = socket_message(96, 6) + socket_message(124, 1)
    second = socket_message(124, 8) + socket_message(96, 6) + socket_message(96, 5) + done_message()
    counts, done, lengths = reply_states(first, SEQ)
    assert (counts, done, lengths) == (Counter({6: 1, 1: 1}), False, (96, 124))
    assert states_by_pattern(second, len(second) - 20, SEQ, lengths) == Counter({6: 1, 8: 1, 5: 1})
    assert reply_states(second, SEQ, lengths) == (Counter({6: 1, 8: 1, 5: 1}), True, lengths)


def test_pattern_refuses_a_datagram_with_an_unknown_length() -> None:
    """A message of a length the pattern does not know sends the datagram message by message, which learns it."""
    datagram = socket_message(96, 6) + socket_message(132, 1) + socket_message(124, 8)
    assert states_by_pattern(datagram, len(datagram), SEQ, (96, 124)) is None
    assert reply_states(datagram, SEQ, (96, 124)) == (Counter({6: 1, 1: 1, 8: 1}), False, (96, 124, 132))


def test_pattern_is_not_fooled_by_a_look_alike_inside_an_unknown_message() -> None:
    """A known-length message hidden in the payload of an unknown one would match: the gap before it shows."""
    hidden = socket_message(96, 6)
    outer = socket_message(136, 1, payload=bytes(22) + hidden)  # the look-alike ends where the outer message does
    datagram = outer + socket_message(96, 6)
    assert states_by_pattern(datagram, len(datagram), SEQ, (96,)) is None
    assert reply_states(datagram, SEQ, (96,))[0] == Counter({1: 1, 6: 1})


def test_messages_of_another_dump_are_skipped() -> None:
    """A message with another sequence number is not counted (message by message, as the pattern refuses it)."""
    datagram = socket_message(96, 6) + socket_message(96, 6, seq=SEQ + 1) + socket_message(96, 1)
    assert states_by_pattern(datagram, len(datagram), SEQ, (96,)) is None
    assert reply_states(datagram, SEQ, (96,))[0] == Counter({6: 1, 1: 1})


def test_a_done_look_alike_at_the_end_of_a_message_does_not_end_the_dump() -> None:
    """A socket message whose last 20 bytes read as NLMSG_DONE is counted, and the dump goes on."""
    fake_done_at_end = socket_message(124, 1, payload=bytes(124 - 18 - 20) + done_message())
    datagram = socket_message(96, 6) + fake_done_at_end
    assert reply_states(datagram, SEQ, (96, 124)) == (Counter({6: 1, 1: 1}), False, (96, 124))


def test_an_error_ending_the_dump_raises() -> None:
    """NLMSG_DONE with an error code, or NLMSG_ERROR, raises OSError with the kernel's errno."""
    with pytest.raises(OSError) as failed_dump:
        reply_states(socket_message(96, 6) + done_message(code=-4), SEQ, (96,))
    assert failed_dump.value.errno == 4
    refused = struct.pack("=IHHIIi", 36, 2, 0, SEQ, 0, -22) + bytes(16)  # NLMSG_ERROR, then the request's header
    with pytest.raises(OSError) as error:
        reply_states(refused, SEQ)
    assert error.value.errno == 22


def test_a_truncated_message_raises() -> None:
    """A message longer than what is left of the datagram is malformed, not counted."""
    with pytest.raises(OSError):
        reply_states(socket_message(96, 6)[:60], SEQ)
