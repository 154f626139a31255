"""Per-connection session objects ("agents") and the registry that owns them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

# Large enough that a leaked agent shows up in RSS, like a real session with buffers.
AGENT_BUFFER_BYTES = 32 * 1024


def _filled_buffer() -> bytearray:
    # Repetition writes every byte, so the pages count in RSS (a calloc'd buffer may not).
    return bytearray(b"\x00") * AGENT_BUFFER_BYTES


@dataclass(eq=False)
class Agent:
    """Server-side state of one WebSocket client, of realistic size."""

    agent_id: int
    remote: str
    path: str
    created_at: float = field(default_factory=time.time)  # wall clock, for humans
    last_active_monotonic: float = field(default_factory=time.monotonic)
    messages_in: int = 0
    bytes_in: int = 0
    buffer: bytearray = field(default_factory=_filled_buffer, repr=False)
    attributes: dict[str, str] = field(default_factory=dict)

    def record_message(self, size_bytes: int) -> None:
        """Account for one received message."""
        self.messages_in += 1
        self.bytes_in += size_bytes
        self.last_active_monotonic = time.monotonic()


class AgentRegistry:
    """All live agents by id; whoever opens an agent must close it, or it leaks."""

    def __init__(self) -> None:
        self._agents: dict[int, Agent] = {}  # live agents by id
        self._ids = itertools.count(1)  # agent ids are never reused

    def open(self, remote: str, path: str, attributes: dict[str, str] | None = None) -> Agent:
        """Create and register an agent for a new connection."""
        agent = Agent(agent_id=next(self._ids), remote=remote, path=path, attributes=dict(attributes or {}))
        self._agents[agent.agent_id] = agent
        return agent

    def close(self, agent_id: int) -> Agent | None:
        """Remove an agent; return it, or None when it was not registered."""
        return self._agents.pop(agent_id, None)

    def get(self, agent_id: int) -> Agent | None:
        """Return a live agent by id."""
        return self._agents.get(agent_id)

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def __iter__(self) -> Iterator[Agent]:
        return iter(list(self._agents.values()))
