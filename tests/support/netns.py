"""Two hosts on this machine: network namespaces joined by a veth pair, made and removed by a test.

Host A (10.200.0.1) and host B (10.200.0.2) see each other only over the veth link, each with
its own loopback: what one binds on 127.0.0.1 the other cannot reach. Needs root and `ip`
(iproute2); `unavailable()` says so (a failure under CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.unavailable import unavailable

SUBNET_PREFIX = "10.200.0"  # inside the namespaces only: nothing of it reaches the machine's own network
IP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Host:
    """One namespace: its name and address."""

    netns: str  # `ip netns` name
    address: str  # its address on the veth link

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=check)


@contextmanager
def two_hosts() -> Iterator[tuple[Host, Host]]:
    """Make hosts A and B (namespaces and a veth pair between them); remove them afterwards."""
    if shutil.which("ip") is None:
        unavailable("`ip` (iproute2) is not installed: no network namespaces")
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    tag = f"fp{os.getpid() % 100000}"  # veth names have at most 15 characters
    a = Host(f"{tag}a", f"{SUBNET_PREFIX}.1")
    b = Host(f"{tag}b", f"{SUBNET_PREFIX}.2")
    made: list[str] = []
    try:
        for host in (a, b):
            result = _ip("netns", "add", host.netns, check=False)
            if result.returncode != 0:
                unavailable(f"`ip netns add` failed: {result.stderr.strip()}")
            made.append(host.netns)
        _ip("link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        for host, link in ((a, f"{tag}va"), (b, f"{tag}vb")):
            _ip("link", "set", link, "netns", host.netns)
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", link)
            _ip("-n", host.netns, "link", "set", link, "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for name in made:  # the veth pair goes with its namespaces
            _ip("netns", "del", name, check=False)
