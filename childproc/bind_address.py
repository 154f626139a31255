"""The address a child program binds, and whether it keeps the program on this machine."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback_host(host: str) -> bool:
    """Tell whether binding to this host keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Other host names may resolve to anything.
        return False


def resolve_bind_address(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """Resolve ``host`` to the one address we bind, so the reported port is the only port."""
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, str(sockaddr[0])
