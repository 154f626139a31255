"""Observe a server process and its descendants on this machine, through psutil."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable

import psutil

from monitors.cpu_budget import CpuBudget
from monitors.sample import ResourceSample, SamplerError
from monitors.tcp_sockets import ONLY_LISTEN, WITHOUT_TIME_WAIT, listening_pids, tcp_states_on_port

# The most of a core the TCP-state queries may take. The kernel walks every TCP socket of the
# machine for each one: a few milliseconds at 10,000 sockets, tens at the 100,000 a fast
# flapping run leaves in TIME_WAIT. Past that share, samples skip the query (their TCP states
# are unknown) until it is due again.
SOCKET_QUERY_CPU_SHARE = 0.02


class ProcessTreeSampler:
    """Samples memory, CPU, fds and threads summed over a process tree, and TCP states on its port."""

    def __init__(self, pid: int, port: int | None, follow_port: bool = False) -> None:
        self.pid = pid  # the root of the watched tree (changes when a followed port gets a new server)
        self.port = port  # the server's listening port, for TCP states; None to skip them
        # Watching "whoever listens on the port": when the root dies and another process
        # listens there, the sampler moves to it (a restart; the timeline sees the new pid).
        self.follow_port = follow_port and port is not None
        self._root = psutil.Process(pid)  # raises NoSuchProcess; for_pid() turns that into a reason
        self._name = _name_or_unknown(self._root)  # kept so describe() works after the root dies
        # Process objects survive across samples because cpu_percent(None) measures
        # since the previous call on the same object; psutil compares pid and start
        # time, so a reused pid gets a fresh object.
        self._procs: dict[int, psutil.Process] = {pid: self._root}
        self.listeners = 0  # how many processes listened on the port when it was found by port (0: found by pid)
        self._socket_queries = CpuBudget(SOCKET_QUERY_CPU_SHARE)  # paces the TCP-state queries

    @classmethod
    def for_pid(cls, pid: int, port: int | None = None) -> ProcessTreeSampler:
        """A sampler for the tree rooted at `pid`; SamplerError(fatal) if it cannot be watched."""
        return cls._checked(pid, port, label=f"--server-pid {pid}")

    @classmethod
    def for_port(cls, port: int) -> ProcessTreeSampler:
        """A sampler for the process listening on `port`; SamplerError(fatal) if there is none."""
        try:
            pids = listening_pids(port)
        except OSError as exc:
            raise SamplerError(
                f"--server-port {port}: cannot list sockets ({exc.strerror or exc}); pass --server-pid", fatal=True
            ) from None
        if not pids:
            if _someone_listens(port):
                raise SamplerError(
                    f"--server-port {port}: the listening process is not visible to this user; "
                    "run as the server's user or pass --server-pid",
                    fatal=True,
                )
            raise SamplerError(f"--server-port {port}: no process listens on this port", fatal=True)
        root = _server_root(pids)
        if root is None:
            listed = ", ".join(str(pid) for pid in pids)
            raise SamplerError(
                f"--server-port {port}: unrelated processes listen (pids {listed}); pass --server-pid",
                fatal=True,
            )
        sampler = cls._checked(root, port, label=f"--server-port {port}: pid {root}", follow_port=True)
        sampler.listeners = len(pids)
        return sampler

    @classmethod
    def _checked(cls, pid: int, port: int | None, label: str, follow_port: bool = False) -> ProcessTreeSampler:
        """A sampler that has sampled once; `label` starts each fatal reason (the user's option)."""
        if pid <= 0:
            raise SamplerError(f"{label}: not a process id", fatal=True)
        try:
            sampler = cls(pid, port, follow_port)
        except psutil.NoSuchProcess:
            raise SamplerError(f"{label}: no such process", fatal=True) from None
        except psutil.AccessDenied:
            raise SamplerError(f"{label}: access denied", fatal=True) from None
        # One sample now finds permission problems before the run starts, and
        # gives cpu_percent its first reading.
        try:
            first = sampler.sample(0.0)
        except SamplerError as exc:
            raise SamplerError(f"{label}: {exc.reason}", fatal=True) from None
        if not first.alive:
            raise SamplerError(f"{label}: no such process", fatal=True)
        return sampler

    source = "process"  # where its series come from, as the monitor's freshness names it

    @property
    def series(self) -> tuple[str, ...]:
        """The ResourceSample series it measures (held connections only with a port)."""
        base = ("rss_bytes", "open_fds", "threads")
        return base if self.port is None else (*base, "held_connections")

    @property
    def watched_pids(self) -> set[int]:
        """The pids summed by the last sample: the root and every descendant it had then."""
        return set(self._procs)

    def describe(self) -> str:
        """One line: root pid, its name, the number of processes in the tree, and the port."""
        try:
            count = 1 + len(self._root.children(recursive=True))
            text = f"process tree of pid {self.pid} ({self._name}, {_plural(count, 'process', 'processes')})"
        except psutil.Error:
            text = f"process tree of pid {self.pid} ({self._name}, not running)"
        return text if self.port is None else f"{text}, port {self.port}"

    def sample(self, now_s: float) -> ResourceSample:
        """Sum the tree's resources now; alive=False once the root is gone or a zombie.

        When following the port, a gone root is replaced by the process now listening
        there, if there is one (a restarted server), and that one is sampled.
        """
        try:
            if not self._root.is_running() or self._root.status() == psutil.STATUS_ZOMBIE:
                return self._gone(now_s)
            children = _children(self._root)
        except psutil.NoSuchProcess:  # ZombieProcess is a subclass
            return self._gone(now_s)
        except psutil.AccessDenied:
            raise SamplerError(f"pid {self.pid} ({self._name}): access denied listing its children") from None

        tree = [self._root, *(self._cached(child) for child in children)]
        self._procs = {proc.pid: proc for proc in tree}  # forget processes that left the tree
        rss = fds = threads = 0
        cpu = 0.0
        for proc in tree:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    cpu += proc.cpu_percent(None)
                    fds += _open_fds(proc)
                    threads += proc.num_threads()
            except psutil.NoSuchProcess:
                if proc is self._root:
                    return self._dead(now_s)
                continue  # a child that exited mid-sample no longer holds anything
            except psutil.AccessDenied:
                raise SamplerError(
                    f"pid {proc.pid} ({_name_or_unknown(proc)}): access denied reading its resources; "
                    "run as the server's user or as root"
                ) from None

        tcp_states = None
        if self.port is not None and self._socket_queries.due(now_s):
            started_cpu_s = time.thread_time()
            try:
                tcp_states = tcp_states_on_port(self.port, WITHOUT_TIME_WAIT)
            except OSError as exc:
                raise SamplerError(f"port {self.port}: cannot read TCP sockets: {exc.strerror or exc}") from None
            self._socket_queries.spent(now_s, time.thread_time() - started_cpu_s)
        return ResourceSample(
            t_s=now_s,
            pid=self.pid,
            rss_bytes=rss,
            cpu_pct=round(cpu, 1),
            open_fds=fds,
            threads=threads,
            tcp_states=tcp_states,
        )

    def _cached(self, proc: psutil.Process) -> psutil.Process:
        """The cached Process object for `proc` when it is the same process (not a reused pid)."""
        cached = self._procs.get(proc.pid)
        return cached if cached is not None and cached == proc else proc

    def _gone(self, now_s: float) -> ResourceSample:
        """The root is gone: move to the port's new server when following it, else report it dead."""
        successor = self._port_successor() if self.follow_port else None
        if successor is None:
            return self._dead(now_s)
        self.pid = successor.pid
        self._root = successor
        self._name = _name_or_unknown(successor)
        self._procs = {successor.pid: successor}
        return self.sample(now_s)

    def _port_successor(self) -> psutil.Process | None:
        """The live process (tree root) listening on the port now, if it is not the old root."""
        assert self.port is not None
        try:
            root = _server_root(listening_pids(self.port))
            if root is None or root == self.pid:
                return None
            successor = psutil.Process(root)
            return None if successor.status() == psutil.STATUS_ZOMBIE else successor
        except (psutil.Error, OSError):
            return None

    def _dead(self, now_s: float) -> ResourceSample:
        return ResourceSample(t_s=now_s, alive=False, pid=self.pid)


# /proc/<pid>/task/<tid>/children lists a thread's children: walking the tree with it
# reads a few files, where psutil's children() reads /proc/<pid>/stat of every process
# on the machine (a millisecond per sample with a hundred processes).
_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _descendant_pids(pid: int) -> list[int]:
    """Pids of every descendant of `pid`, from the children files of each thread of the tree."""
    found: list[int] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError as error:
            _raise_if_out_of_fds(error)
            continue  # exited meanwhile
        for thread in threads:
            try:
                with open(f"/proc/{parent}/task/{thread}/children", "rb") as listing:
                    kids = [int(word) for word in listing.read().split()]
            except OSError as error:
                _raise_if_out_of_fds(error)
                continue  # the thread exited meanwhile
            found += kids
            parents += kids
    return found


def _raise_if_out_of_fds(error: OSError) -> None:
    """Re-raise an error of our own fd limit: a tree read without descriptors is not an exited process."""
    if error.errno in (errno.EMFILE, errno.ENFILE):
        raise error


def _children(root: psutil.Process) -> list[psutil.Process]:
    """Every descendant of `root`; none once `root` is gone (the caller finds it gone)."""
    if not _PROC_CHILDREN:
        return root.children(recursive=True)
    children = []
    for pid in _descendant_pids(root.pid):
        try:
            children.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue  # exited since it was listed
    return children


def _open_fds(proc: psutil.Process) -> int:
    """The process's open fds: the size of /proc/<pid>/fd (Linux 6.2+), else psutil counts the entries.

    The size is the kernel's own count, read in microseconds where listing 5,000 entries
    takes milliseconds; it also counts an fd number reserved by a call in progress (a
    thread blocked in accept()), so it may read one above the listing for such a server.
    """
    try:
        size = os.stat(f"/proc/{proc.pid}/fd").st_size
    except OSError:
        size = 0
    return size if size > 0 else proc.num_fds()


def pick_root_pid(pids: Iterable[int], parent_of: Callable[[int], int | None]) -> int | None:
    """The one process among `pids` that the others descend from, or None if they are unrelated.

    Pre-fork servers list the master and its workers (the master is the one whose
    parent is not listening); SO_REUSEPORT workers without a listening master are
    siblings, and their shared parent is the server. Siblings under pid 1 are
    unrelated services, not one server.
    """
    candidates = set(pids)
    roots = sorted(pid for pid in candidates if not _has_ancestor_in(pid, candidates, parent_of))
    if len(roots) == 1:
        return roots[0]
    parents = {parent_of(pid) for pid in roots}
    if len(parents) == 1:
        (parent,) = parents
        if parent is not None and parent > 1:
            return parent
    return None


def _server_root(listeners: list[int]) -> int | None:
    """The process owning the port's listeners (see pick_root_pid), unless it is this process or its ancestor.

    Two unrelated servers started from the shell that also started Locust resolve to that
    shell: watching it would count the load generator as the server.
    """
    root = pick_root_pid(listeners, _parent_pid)
    if root is None:
        return None
    own_line = {os.getpid()}
    parent = _parent_pid(os.getpid())
    while parent is not None and parent not in own_line:
        own_line.add(parent)
        parent = _parent_pid(parent)
    return None if root in own_line and root not in listeners else root


def _has_ancestor_in(pid: int, candidates: set[int], parent_of: Callable[[int], int | None]) -> bool:
    seen = {pid}
    parent = parent_of(pid)
    while parent is not None and parent not in seen:
        if parent in candidates:
            return True
        seen.add(parent)
        parent = parent_of(parent)
    return False


def _parent_pid(pid: int) -> int | None:
    if pid <= 1:
        return None
    try:
        return psutil.Process(pid).ppid() or None
    except psutil.Error:
        return None


def _someone_listens(port: int) -> bool:
    try:
        return tcp_states_on_port(port, ONLY_LISTEN).get("LISTEN", 0) > 0
    except OSError:
        return False


def _name_or_unknown(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
