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
import struct
from collections import Counter

import psutil

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

# Netlink and sock_diag constants (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h).
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_INET_DIAG_REQ_BYTECODE = 1
_INET_DIAG_BC_S_GE = 2
_INET_DIAG_BC_S_LE = 3
# States 1..12 only: bit 13 (TCP_BOUND_INACTIVE, kernel >= 6.5) would add bound-only
# sockets that /proc/net/tcp never shows, and the two implementations must agree.
_ALL_STATES_MASK = sum(1 << state for state in TCP_STATE_NAMES)
_LISTEN_MASK = 1 << 10
_TIME_WAIT_MASK = 1 << 6
_FIRST_LOOK = 16  # messages looked at before a run is followed to the end of its batch
_FAMILIES = (_socket.AF_INET, _socket.AF_INET6)
_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_RECV_BUFFER_BYTES = 65536  # the kernel fills at most 32 KiB per dump message batch


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


def _diag_request(family: int, port: int, seq: int, states: int = _ALL_STATES_MASK) -> bytes:
    """One SOCK_DIAG_BY_FAMILY dump request for TCP sockets of `family` in `states` with local port `port`."""
    # inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid
    # (ports, addresses, interface, cookie), which a dump ignores: the bytecode filters.
    req = struct.pack("=BBBBI", family, _socket.IPPROTO_TCP, 0, 0, states) + bytes(48)
    bytecode = _source_port_filter(port)
    attr = struct.pack("=HH", 4 + len(bytecode), _INET_DIAG_REQ_BYTECODE) + bytecode
    body = req + attr
    header = _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0)
    return header + body


def _run_length(buf: bytearray, offset: int, count: int, step: int, header: bytes) -> int:
    """How many of the `count` messages from `offset`, `step` bytes apart, start with `header`'s length, type, seq."""
    stop = offset + count * step
    for index in (0, 1, 2, 3, 4, 5, 8, 9, 10, 11):  # flags and pid may differ
        column = buf[offset + index : stop : step]
        count = min(count, len(column) - len(column.lstrip(header[index : index + 1])))
        if count == 0:
            break
    return count


def _uniform_run(buf: bytearray, offset: int, end: int, header: bytes) -> int:
    """How many messages from `offset` (up to `end`) repeat `header` (its length, type and seq).

    Works on stride slices (one byte of every message at a time) in C, not message by
    message: a batch of 300 sockets in one state is a few slices instead of 300 unpacks.
    A short run (sockets of mixed states) costs a look at the next `_FIRST_LOOK` only.
    """
    step = (int.from_bytes(header[0:4], "little") + 3) & ~3
    available = (end - offset) // step
    run = _run_length(buf, offset, min(available, _FIRST_LOOK), step, header)
    if run == _FIRST_LOOK and available > _FIRST_LOOK:
        run = _run_length(buf, offset, available, step, header)
    return run


def _netlink_dump_states(
    sock: _socket.socket, family: int, port: int, seq: int, counts: Counter[int], states: int = _ALL_STATES_MASK
) -> None:
    """Send one dump request and add the state of every socket it returns to `counts`."""
    sock.sendto(_diag_request(family, port, seq, states), (0, 0))
    buf = bytearray(_RECV_BUFFER_BYTES)
    view = memoryview(buf)
    unpack_header = _NLMSG_HDR.unpack_from
    while True:
        n = sock.recv_into(view)
        if n == 0:
            raise OSError(errno.EPROTO, "sock_diag: empty reply")
        offset = 0
        while offset + _NLMSG_HDR.size <= n:
            msg_len, msg_type, _flags, msg_seq, _pid = unpack_header(buf, offset)
            if msg_len < _NLMSG_HDR.size:
                raise OSError(errno.EPROTO, "malformed sock_diag reply")
            step = (msg_len + 3) & ~3
            if msg_seq == seq:
                if msg_type == _NLMSG_DONE:
                    return
                if msg_type == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", buf, offset + _NLMSG_HDR.size)
                    if code == 0:
                        return  # an acknowledgement, not an error
                    raise OSError(-code, f"sock_diag: {errno.errorcode.get(-code, -code)}")
                if msg_type == _SOCK_DIAG_BY_FAMILY:
                    # Equal messages come in runs: count a run at once. inet_diag_msg starts
                    # with family, state: the state is its second byte.
                    run = _uniform_run(buf, offset, n, bytes(buf[offset : offset + _NLMSG_HDR.size]))
                    states = bytes(buf[offset + _NLMSG_HDR.size + 1 : offset + run * step : step])
                    for state in set(states):
                        counts[state] += states.count(state)
                    offset += run * step
                    continue
            offset += step


def tcp_states_on_port_netlink(port: int) -> dict[str, int]:
    """Server-side TCP sockets on local `port` by state, from a netlink sock_diag query."""
    counts: Counter[int] = Counter()
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG)
    try:
        # Each dump walks every TCP socket of the machine, whatever its family: a family with
        # no listener on the port (IPv6 for most servers) is not dumped. Listeners alone are
        # cheap to dump; with none at all (a dead server) both families are, for what it left.
        listening = []
        for seq, family in enumerate(_FAMILIES, start=1):
            listeners: Counter[int] = Counter()
            _netlink_dump_states(sock, family, port, seq, listeners, states=_LISTEN_MASK)
            if listeners:
                listening.append(family)
        # TIME_WAIT sockets and full sockets make messages of two sizes; dumped apart, each
        # dump is runs of equal messages that are counted a batch at a time (see _uniform_run).
        seq = len(_FAMILIES)
        for family in listening or _FAMILIES:
            for states in (_TIME_WAIT_MASK, _ALL_STATES_MASK & ~_TIME_WAIT_MASK):
                seq += 1
                _netlink_dump_states(sock, family, port, seq, counts, states=states)
    finally:
        sock.close()
    return {_state_name(state): n for state, n in counts.items()}


def tcp_states_on_port_proc(port: int) -> dict[str, int]:
    """Server-side TCP sockets on local `port` by state, parsed from /proc/net/tcp and tcp6."""
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
    return {_state_name(state): n for state, n in counts.items()}


def tcp_states_on_port(port: int) -> dict[str, int]:
    """Server-side TCP sockets (IPv4 and IPv6) whose local port is `port`, counted by state name.

    Uses netlink sock_diag (about a millisecond at 10,000 sockets); falls back to
    /proc/net/tcp{,6} where netlink is refused, e.g. in some sandboxes. Raises
    OSError when neither can be read.
    """
    try:
        return tcp_states_on_port_netlink(port)
    except OSError:
        return tcp_states_on_port_proc(port)


def listening_pids(port: int) -> list[int]:
    """Pids of the processes holding a TCP LISTEN socket on local `port`, sorted and unique.

    Processes of other users show no pid unless we run as root, so the list may be
    empty while something listens; check `tcp_states_on_port(port)` to tell.
    """
    pids = {
        conn.pid
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid is not None
    }
    return sorted(pids)
