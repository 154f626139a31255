"""Fault modes of the reference server: each one is a real bug, off by default."""

from __future__ import annotations

from dataclasses import dataclass


def is_rejected_handshake(handshake_index: int, reject_pct: int) -> bool:
    """Tell whether the handshake with this 0-based index is rejected.

    The pattern is deterministic and evenly spread: exactly ``reject_pct`` of
    every 100 consecutive handshakes are rejected (50 % rejects every second).
    """
    if reject_pct <= 0:
        return False
    if reject_pct >= 100:
        return True
    # Bresenham-style spreading: reject when floor(n * pct / 100) steps up.
    return (handshake_index + 1) * reject_pct // 100 != handshake_index * reject_pct // 100


@dataclass(frozen=True)
class FaultModes:
    """The set of injected bugs; the default instance injects none."""

    leak_memory_kb: int = 0  # KiB leaked per accepted connection
    leak_agents_on_drop: bool = False  # keep the agent when the client vanishes without a close frame
    leak_fds: bool = False  # open one file descriptor per connection and never close it
    reject_pct: int = 0  # share of WebSocket handshakes answered with HTTP 503, 0-100
    slow_handshake_ms: int = 0  # delay added to every WebSocket handshake
    block_loop_ms: int = 0  # synchronous work per handshake that stalls the event loop for every connection
    lose_on_resume: bool = False  # app streams: a resume replays only the newer half of what was missed
    ignore_pingreq: bool = False  # mqtt: PINGREQ gets no PINGRESP (a broker whose keepalive handling hangs)

    def should_reject(self, handshake_index: int) -> bool:
        """Tell whether the handshake with this 0-based index gets a fault 503."""
        return is_rejected_handshake(handshake_index, self.reject_pct)

    def should_free_agent(self, *, dropped: bool) -> bool:
        """Tell whether the agent of a finished connection is removed from the registry.

        ``dropped`` means the client went away without sending a close frame.
        """
        return not (dropped and self.leak_agents_on_drop)

    def describe(self) -> list[str]:
        """Name each enabled fault mode as its command-line flag, for the start log."""
        enabled = []
        if self.leak_memory_kb:
            enabled.append(f"--leak-memory-kb {self.leak_memory_kb}")
        if self.leak_agents_on_drop:
            enabled.append("--leak-agents-on-drop")
        if self.leak_fds:
            enabled.append("--leak-fds")
        if self.reject_pct:
            enabled.append(f"--reject-pct {self.reject_pct}")
        if self.slow_handshake_ms:
            enabled.append(f"--slow-handshake-ms {self.slow_handshake_ms}")
        if self.block_loop_ms:
            enabled.append(f"--block-loop-ms {self.block_loop_ms}")
        if self.lose_on_resume:
            enabled.append("--lose-on-resume")
        if self.ignore_pingreq:
            enabled.append("--ignore-pingreq")
        return enabled
