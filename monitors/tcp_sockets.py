"""Count the server's TCP sockets on a port, by state, as the kernel sees them.

Only sockets whose LOCAL port is the server port are counted: those are the
server's side of each connection. A load generator on the same machine has the
port as its REMOTE port and is left out. Sockets of other network namespaces
are not visible.

No gevent here: the functions block briefly and may run in a native thread.
"""

from __future__ import annotations

import _socket  # the C socket type, which gevent's monkey-patching never replaces
import errno
import functools
import os
import re
import struct
from collections import Counter

# Kernel TCP state numbers (include/net/tcp_states.h), as /proc/net/tcp and sock_diag report them.
TCP_STATE_NAMES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}

# Netlink and inet_diag constants (linux/netlink.h, linux/inet_diag.h).
_NETLINK_SOCK_DIAG = 4
_TCPDIAG_GETSOCK = 18  # the request's type, which the kernel gives each socket message of the reply
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_INET_DIAG_REQ_BYTECODE = 1
_INET_DIAG_BC_S_GE = 2
_INET_DIAG_BC_S_LE = 3
# States 1..12 only: bit 13 (TCP_BOUND_INACTIVE, kernel >= 6.5) would add bound-only
# sockets that /proc/net/tcp never shows, and the two implementations must agree.
ALL_STATES = sum(1 << state for state in TCP_STATE_NAMES)  # a mask of states: bit N is state N
TIME_WAIT = 6
LISTEN = 10
# What the server monitor counts: every state but TIME_WAIT, which the kernel keeps on its own
# (no resource of the server). A flapping run leaves tens of thousands of TIME_WAIT sockets on
# the port, and a dump that reports each one costs the load generator a millisecond per
# thousand sockets, every sample; leaving them out of the request halves the dump.
WITHOUT_TIME_WAIT = ALL_STATES & ~(1 << TIME_WAIT)
ONLY_LISTEN = 1 << LISTEN
_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLMSG_DONE_MSG = struct.Struct("=IHHIIi")  # the header, then the dump's error code (0: complete)
_STATE_OFFSET = _NLMSG_HDR.size + 1  # inet_diag_msg starts with family, state
_ROW = 20  # bytes of each socket message kept by the pattern path: header, family, state, timer, retrans
_MAX_LENGTHS = 8  # distinct message lengths the pattern path tells apart, at most
_RECV_BUFFER_BYTES = 65536  # the kernel fills at most 32 KiB per dump datagram
_TIMEOUT_S = 5.0  # one recv of a dump answers in microseconds; this only bounds a kernel that never does


def _state_name(state: int) -> str:
    return TCP_STATE_NAMES.get(state, f"STATE_{state}")


def _source_port_filter(port: int) -> bytes:
    """inet_diag bytecode accepting sockets with source port == `port`: S_GE then S_LE."""
    # Each comparison is an op {code, yes, no} followed by a pseudo-op whose `no`
    # holds the port. Jumping past the end + 4 means "reject", landing exactly on
    # the end means "accept". S_EQ would be shorter but needs kernel >= 4.16.
    op = struct.Struct("=BBH")
    return b"".join(
        (
            op.pack(_INET_DIAG_BC_S_GE, 8, 20),
            op.pack(0, 0, port),
            op.pack(_INET_DIAG_BC_S_LE, 8, 12),
            op.pack(0, 0, port),
        )
    )


def diag_request(port: int, seq: int, states: int = ALL_STATES) -> bytes:
    """One TCPDIAG_GETSOCK dump request for the TCP sockets (IPv4 and IPv6) in `states` with local port `port`."""
    # The original tcp_diag request, struct inet_diag_req: its dump takes both families in
    # one walk of the kernel's socket tables, the walk over every TCP socket of the machine
    # that is most of a dump's cost (SOCK_DIAG_BY_FAMILY walks once per family). Fields:
    # family (a dump ignores it), address lengths, ext (0: no optional attributes),
    # inet_diag_sockid, states, dbs. The dump compares the sockid's source port first, where
    # the bytecode would run on every socket of the machine; the bytecode makes sure of it.
    sockid = struct.pack(">H", port) + bytes(46)  # source port (network order), the rest unset
    req = struct.pack("=BBBB", 0, 0, 0, 0) + sockid + struct.pack("=II", states, 0)
    bytecode = _source_port_filter(port)
    attr = struct.pack("=HH", 4 + len(bytecode), _INET_DIAG_REQ_BYTECODE) + bytecode
    body = req + attr
    header = _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), _TCPDIAG_GETSOCK, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0)
    return header + body


@functools.lru_cache(maxsize=64)
def _socket_messages_pattern(lengths: tuple[int, ...], seq: int) -> re.Pattern[bytes]:
    """A regex matching one whole socket message of dump `seq` whose length is one of `lengths`.

    It captures the message's first `_ROW` bytes (its header, family and state).
    """
    alternatives = [
        re.escape(struct.pack("=IH", length, _TCPDIAG_GETSOCK))
        + b".."  # flags
        + re.escape(struct.pack("=I", seq))
        + b".{%d}" % (length - 12)  # the pid and the rest of the message
        for length in lengths
    ]
    return re.compile(rb"(?s)(?=(.{%d}))(?:%s)" % (_ROW, b"|".join(alternatives)))


def states_by_pattern(chunk: bytes, end: int, seq: int, lengths: tuple[int, ...]) -> Counter[int] | None:
    """States of the messages in chunk[:end] when all are socket messages of `seq` with one of `lengths`; else None.

    `lengths` are multiples of 4 and at least `_ROW`. The regex runs over the chunk in C,
    where a Python loop over the messages costs as much as the kernel's work for them. It
    finds matches anywhere: only when they cover chunk[:end] with no gap are they the
    message chain itself, each match starting where the previous message ends.
    """
    rows = b"".join(_socket_messages_pattern(lengths, seq).findall(chunk, 0, end))
    if sum(memoryview(rows).cast("I")[0 :: _ROW // 4]) != end:
        return None
    return _byte_counts(rows[_STATE_OFFSET::_ROW])


def _byte_counts(states: bytes) -> Counter[int]:
    """How many times each byte value occurs in `states`."""
    # A dozen counts in C beat iterating over every byte; should a byte fall outside
    # the known states (no kernel sends one), the bytes are counted one by one.
    counts = Counter({state: n for state in TCP_STATE_NAMES if (n := states.count(state))})
    return counts if counts.total() == len(states) else Counter(states)


def states_per_message(chunk: bytes, seq: int) -> tuple[Counter[int], bool, set[int]]:
    """Message by message: the socket states of dump `seq` in `chunk`, whether the dump ends there, the lengths seen.

    Raises OSError on a malformed message or an error the kernel reports.
    """
    counts: Counter[int] = Counter()
    lengths: set[int] = set()
    offset = 0
    while offset + _NLMSG_HDR.size <= len(chunk):
        msg_len, msg_type, _flags, msg_seq, _pid = _NLMSG_HDR.unpack_from(chunk, offset)
        if msg_len < _NLMSG_HDR.size or offset + msg_len > len(chunk):
            raise OSError(errno.EPROTO, "malformed sock_diag reply")
        if msg_seq == seq:
            if msg_type in (_NLMSG_DONE, _NLMSG_ERROR):
                # Both carry an error code (an ERROR of 0 is an acknowledgement).
                code = struct.unpack_from("=i", chunk, offset + _NLMSG_HDR.size)[0] if msg_len >= 20 else 0
                if code:
                    raise OSError(-code, f"sock_diag: {errno.errorcode.get(-code, -code)}")
                return counts, True, lengths
            if msg_type == _TCPDIAG_GETSOCK:
                if msg_len <= _STATE_OFFSET:
                    raise OSError(errno.EPROTO, "malformed sock_diag reply")
                counts[chunk[offset + _STATE_OFFSET]] += 1
                lengths.add(msg_len)
        offset += (msg_len + 3) & ~3
    return counts, False, lengths


def _messages_end(chunk: bytes, seq: int) -> tuple[int, bool]:
    """Where the socket messages of `chunk` end, and whether a successful NLMSG_DONE of `seq` follows them."""
    if len(chunk) >= _NLMSG_DONE_MSG.size:
        tail = _NLMSG_DONE_MSG.unpack_from(chunk, len(chunk) - _NLMSG_DONE_MSG.size)
        msg_len, msg_type, _flags, msg_seq, _pid, code = tail
        if (msg_len, msg_type, msg_seq, code) == (_NLMSG_DONE_MSG.size, _NLMSG_DONE, seq, 0):
            return len(chunk) - _NLMSG_DONE_MSG.size, True
    return len(chunk), False


def _pattern_lengths(known: tuple[int, ...], seen: set[int]) -> tuple[int, ...]:
    """`known` plus the `seen` lengths the pattern path can use: multiples of 4 (no padding), at least `_ROW`."""
    usable = {length for length in seen if length % 4 == 0 and length >= _ROW}
    return tuple(sorted(usable.union(known)))[:_MAX_LENGTHS]


def reply_states(chunk: bytes, seq: int, lengths: tuple[int, ...] = ()) -> tuple[Counter[int], bool, tuple[int, ...]]:
    """The socket states in one datagram of the reply to dump `seq`, whether it ends the dump, the lengths known.

    A datagram made only of socket messages of known `lengths` (and maybe the final
    NLMSG_DONE) is counted by `states_by_pattern`; any other goes message by message,
    which learns its lengths for the next datagrams.
    """
    end, done = _messages_end(chunk, seq)
    if lengths:
        counts = states_by_pattern(chunk, end, seq, lengths)
        if counts is not None:
            return counts, done, lengths
    counts, done, seen = states_per_message(chunk, seq)
    return counts, done, _pattern_lengths(lengths, seen)


def _netlink_dump_states(sock: _socket.socket, port: int, seq: int, states: int = ALL_STATES) -> Counter[int]:
    """Send one dump request and count the state of every socket it returns."""
    sock.sendto(diag_request(port, seq, states), (0, 0))
    counts: Counter[int] = Counter()
    lengths: tuple[int, ...] = ()
    buffer = memoryview(bytearray(_RECV_BUFFER_BYTES))
    done = False
    while not done:
        received = sock.recv_into(buffer)
        if not received:
            raise OSError(errno.EPROTO, "sock_diag: empty reply")
        chunk_counts, done, lengths = reply_states(bytes(buffer[:received]), seq, lengths)
        counts.update(chunk_counts)
    return counts


def tcp_states_on_port_netlink(port: int, states: int = ALL_STATES) -> dict[str, int]:
    """Server-side TCP sockets on local `port` in `states` (a mask) by state, from one netlink inet_diag dump."""
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG)
    try:
        sock.settimeout(_TIMEOUT_S)
        counts = _netlink_dump_states(sock, port, seq=1, states=states)
    finally:
        sock.close()
    return {_state_name(state): n for state, n in counts.items()}


def tcp_states_on_port_proc(port: int, states: int = ALL_STATES) -> dict[str, int]:
    """Server-side TCP sockets on local `port` in `states` (a mask) by state, parsed from /proc/net/tcp and tcp6."""
    suffix = f":{port:04X}"
    counts: Counter[int] = Counter()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, encoding="ascii") as table:
                next(table, None)  # the column header
                for line in table:
                    fields = line.split(None, 4)
                    # fields: slot, local address:port, remote address:port, state (hex)
                    if len(fields) >= 4 and fields[1].endswith(suffix):
                        counts[int(fields[3], 16)] += 1
        except FileNotFoundError:
            if path.endswith("6"):
                continue  # a kernel without IPv6 has no tcp6 table
            raise
    return {_state_name(state): n for state, n in counts.items() if states >> state & 1}


def tcp_states_on_port(port: int, states: int = ALL_STATES) -> dict[str, int]:
    """Server-side TCP sockets (IPv4 and IPv6) in `states` (a mask) whose local port is `port`, counted by state name.

    Uses one netlink inet_diag dump (at 10,000 sockets on the port, 7-10 ms of CPU on a
    2-vCPU VM, almost all of it the kernel's, where psutil takes hundreds); falls back to
    /proc/net/tcp{,6} where netlink is refused, e.g. in some sandboxes. Raises OSError
    when neither can be read.
    """
    try:
        return tcp_states_on_port_netlink(port, states)
    except OSError:
        return tcp_states_on_port_proc(port, states)


def listening_inodes(port: int) -> set[int]:
    """Inodes of the TCP LISTEN sockets (IPv4 and IPv6) on local `port`, from /proc/net/tcp{,6}."""
    suffix = f":{port:04X}"
    inodes: set[int] = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, encoding="ascii") as table:
                next(table, None)  # the column header
                for line in table:
                    # fields: slot, local address:port, remote, state (hex), queues, timer, retransmits,
                    # uid, timeout, inode
                    fields = line.split(None, 10)
                    if len(fields) >= 10 and fields[3] == "0A" and fields[1].endswith(suffix):
                        inodes.add(int(fields[9]))
        except FileNotFoundError:
            if path.endswith("6"):
                continue  # a kernel without IPv6 has no tcp6 table
            raise
    return inodes


def pids_holding_sockets(inodes: set[int]) -> list[int]:
    """Pids of every process with an fd on one of the sockets `inodes`, sorted.

    A socket shared by a pre-fork server (uvicorn's supervisor and its workers, a gunicorn
    arbiter and its workers) is one inode held by many processes: each of them is listed.
    Processes of other users are not visible unless we run as root.
    """
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: list[int] = []
    if not wanted:
        return found
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue  # exited meanwhile, or another user's
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") in wanted:
                    found.append(int(name))
                    break
            except OSError:
                continue  # closed meanwhile
    return sorted(found)


def listening_pids(port: int) -> list[int]:
    """Pids of the processes holding a TCP LISTEN socket on local `port`, sorted and unique.

    Every holder of a shared listening socket is listed (psutil's net_connections names
    one process per socket, so it saw one worker of a pre-fork server). Processes of other
    users show no pid unless we run as root, so the list may be empty while something
    listens; check `tcp_states_on_port(port)` to tell.
    """
    return pids_holding_sockets(listening_inodes(port))
