"""ProcessTreeSampler against real child processes that allocate, open fds, spawn and listen."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from monitors.process_sampler import ProcessTreeSampler, pick_root_pid
from monitors.sample import ResourceSample, SamplerError

# Deadline for a child to answer or for the kernel to catch up; polled, so it is only a ceiling.
DEADLINE_S = 10.0 * float(os.environ.get("TEST_TIME_SCALE", "1"))
MB = 1 << 20

GRANDCHILD = """
import sys
held = b"x" * (int(sys.argv[1]) << 20)  # filled, so it is resident
print("ready", flush=True)
sys.stdin.read()  # exits when its parent dies and the pipe closes
"""

# A small server: listens, then obeys one command per stdin line and answers "ok".
CHILD = """
import os, socket, subprocess, sys, threading, time
GRANDCHILD = sys.argv[1]
held = []
listener = socket.create_server(("127.0.0.1", 0))
def accept_forever():
    while True:
        held.append(listener.accept()[0])
threading.Thread(target=accept_forever, daemon=True).start()
print("port", listener.getsockname()[1], flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "alloc":
        held.append(b"x" * (int(arg) << 20))
    elif cmd == "fds":
        held.extend(os.open(os.devnull, os.O_RDONLY) for _ in range(int(arg)))
    elif cmd == "spawn":
        child = subprocess.Popen([sys.executable, "-c", GRANDCHILD, arg],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        child.stdout.readline()
        held.append(child)
        print("ok", child.pid, flush=True)
        continue
    elif cmd == "burn":
        end = time.monotonic() + float(arg)
        while time.monotonic() < end:
            pass
    print("ok", flush=True)
"""


class Child:
    """A child server process driven through its stdin."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(  # the child; its pid roots the sampled tree
            [sys.executable, "-c", CHILD, GRANDCHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid  # kept after the process is reaped
        self.port = int(self._read_line().split()[1])  # where the child listens

    def command(self, line: str) -> str:
        """Send one command and return the child's answer once it has done it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self._read_line()
        assert answer.startswith("ok"), answer
        return answer

    def _read_line(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE_S)
        if not ready:
            pytest.fail(f"child {self.pid} did not answer within {DEADLINE_S} s")
        return self.proc.stdout.readline()

    def kill_tree(self) -> None:
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        for proc in descendants:
            try:
                proc.kill()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE_S)
        # Orphaned descendants are reaped by init whenever it gets to it; dead is enough.
        deadline = time.monotonic() + DEADLINE_S
        while any(_running(proc) for proc in descendants) and time.monotonic() < deadline:
            time.sleep(0.01)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def child() -> Iterator[Child]:
    server = Child()
    yield server
    server.kill_tree()


def sample_until(sampler: ProcessTreeSampler, accept: Callable[[ResourceSample], bool]) -> ResourceSample:
    """Sample until `accept` says yes; fail with the last sample at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        seen = sampler.sample(time.monotonic())
        if accept(seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"no matching sample; last seen {seen}")
        time.sleep(0.02)


def test_sample_describes_a_live_process(child: Child) -> None:
    """A sample of a live server has every process field, and the listening socket."""
    sampler = ProcessTreeSampler.for_pid(child.pid, port=child.port)
    sample = sampler.sample(12.5)
    assert sample.t_s == 12.5
    assert sample.alive and sample.pid == child.pid
    assert sample.rss_bytes is not None and sample.rss_bytes > 1 * MB
    assert sample.cpu_pct is not None and sample.cpu_pct >= 0
    assert sample.open_fds is not None and sample.open_fds >= 3
    assert sample.threads is not None and sample.threads >= 2  # main and accept threads
    assert sample.tcp_states == {"LISTEN": 1}
    assert sample.agents is None
    name = psutil.Process(child.pid).name()
    assert sampler.describe() == f"process tree of pid {child.pid} ({name}, 1 process), port {child.port}"


def test_rss_grows_with_allocation(child: Child) -> None:
    """Allocating 20 MB in the server grows the sampled rss by about 20 MB."""
    sampler = ProcessTreeSampler.for_pid(child.pid)
    before = sampler.sample(0.0).rss_bytes
    child.command("alloc 20")
    after = sampler.sample(1.0).rss_bytes
    assert before is not None and after is not None
    assert 18 * MB <= after - before <= 30 * MB


def test_open_fds_grow_with_opened_files(child: Child) -> None:
    """Opening 10 files in the server adds 10 open fds."""
    sampler = ProcessTreeSampler.for_pid(child.pid)
    child.command("fds 0")  # whatever the child opens on its first command is in the baseline
    before = sampler.sample(0.0).open_fds
    child.command("fds 10")
    after = sampler.sample(1.0).open_fds
    assert before is not None and after is not None
    assert after - before == 10


def test_tree_includes_grandchild(child: Child) -> None:
    """A process the server spawns counts in the tree: its memory, its threads, and in describe()."""
    sampler = ProcessTreeSampler.for_pid(child.pid)
    before = sampler.sample(0.0)
    grandchild_pid = int(child.command("spawn 20").split()[1])
    after = sampler.sample(1.0)
    assert before.rss_bytes is not None and after.rss_bytes is not None
    assert before.threads is not None and after.threads is not None
    # The grandchild holds 20 MB plus its own interpreter; the root itself barely grows.
    assert after.rss_bytes - before.rss_bytes >= 20 * MB
    assert psutil.Process(grandchild_pid).memory_info().rss >= 20 * MB
    assert after.threads >= before.threads + 1
    assert "2 processes" in sampler.describe()


def test_the_tree_walk_and_fd_count_agree_with_psutil(child: Child) -> None:
    """The sampler's own tree walk and fd count (the cheap /proc ways) find what psutil finds."""
    from monitors.process_sampler import _children, _open_fds

    child.command("spawn 1")
    child.command("fds 5")
    root = psutil.Process(child.pid)
    assert sorted(p.pid for p in _children(root)) == sorted(p.pid for p in root.children(recursive=True))
    # The kernel's count also holds the fd number a thread blocked in accept() has reserved
    # (the child has one such thread): one more than the entries psutil lists.
    assert root.num_fds() <= _open_fds(root) <= root.num_fds() + 1


def test_grandchild_exit_shrinks_the_tree(child: Child) -> None:
    """When a descendant exits, later samples leave it out without failing."""
    sampler = ProcessTreeSampler.for_pid(child.pid)
    grandchild_pid = int(child.command("spawn 20").split()[1])
    with_grandchild = sampler.sample(0.0).rss_bytes
    assert with_grandchild is not None
    os.kill(grandchild_pid, signal.SIGKILL)
    without = sample_until(sampler, lambda s: s.rss_bytes is not None and s.rss_bytes < with_grandchild - 15 * MB)
    assert without.alive


def test_cpu_of_a_busy_server(child: Child) -> None:
    """Half a second of busy loop between two samples shows as CPU use."""
    sampler = ProcessTreeSampler.for_pid(child.pid)
    sampler.sample(0.0)
    child.command("burn 0.5")
    cpu = sampler.sample(1.0).cpu_pct
    assert cpu is not None and cpu > 20.0


def test_tcp_states_show_connections_to_the_server(child: Child) -> None:
    """Connections made to the server's port show as ESTABLISHED on the server side."""
    sampler = ProcessTreeSampler.for_pid(child.pid, port=child.port)
    clients = [socket.create_connection(("127.0.0.1", child.port)) for _ in range(3)]
    try:
        sample = sample_until(sampler, lambda s: (s.tcp_states or {}).get("ESTABLISHED") == 3)
        assert sample.held_connections == 3
    finally:
        for sock in clients:
            sock.close()


def test_killed_server_is_not_alive(child: Child) -> None:
    """A killed server samples as alive=False, as a zombie and once reaped, rather than raising."""
    sampler = ProcessTreeSampler.for_pid(child.pid, port=child.port)
    child.proc.kill()
    zombie = sample_until(sampler, lambda s: not s.alive)
    assert zombie == ResourceSample(t_s=zombie.t_s, alive=False, pid=child.pid)
    child.proc.wait(DEADLINE_S)
    reaped = sampler.sample(5.0)
    assert reaped == ResourceSample(t_s=5.0, alive=False, pid=child.pid)
    assert "not running" in sampler.describe()


def test_for_pid_of_a_missing_process_is_fatal() -> None:
    """--server-pid naming no process fails at once with a one-line reason."""
    missing = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    with pytest.raises(SamplerError) as caught:
        ProcessTreeSampler.for_pid(missing)
    assert caught.value.fatal
    assert caught.value.reason == f"--server-pid {missing}: no such process"


def test_for_port_finds_the_listening_server(child: Child) -> None:
    """--server-port resolves to the process listening on it."""
    sampler = ProcessTreeSampler.for_port(child.port)
    assert (sampler.pid, sampler.port) == (child.pid, child.port)


def test_for_port_with_no_listener_is_fatal() -> None:
    """--server-port naming a port nobody listens on fails at once with a one-line reason."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(SamplerError) as caught:
        ProcessTreeSampler.for_port(port)
    assert caught.value.fatal
    assert caught.value.reason == f"--server-port {port}: no process listens on this port"


def parents(tree: dict[int, int]) -> Callable[[int], int | None]:
    """A parent_of function over a made-up process tree."""
    return tree.get


def test_pick_root_prefers_the_listening_master() -> None:
    """A pre-fork master listening with its workers is the root."""
    tree = {100: 1, 101: 100, 102: 100}
    assert pick_root_pid([101, 100, 102], parents(tree)) == 100


def test_pick_root_takes_the_parent_of_reuseport_workers() -> None:
    """SO_REUSEPORT workers whose master does not listen resolve to the master."""
    tree = {50: 1, 100: 50, 101: 100, 102: 100}
    assert pick_root_pid([101, 102], parents(tree)) == 100


def test_pick_root_refuses_unrelated_services() -> None:
    """Two services started by init that share a port are not one server."""
    tree = {100: 1, 200: 1}
    assert pick_root_pid([100, 200], parents(tree)) is None
