"""The agent registry, without sockets."""

from __future__ import annotations

from refserver.agents import AGENT_BUFFER_BYTES, AgentRegistry


def test_open_registers_and_close_frees() -> None:
    """An opened agent is counted until closed; closing twice is harmless."""
    registry = AgentRegistry()
    agent = registry.open("127.0.0.1:5000", "/", {"user_agent": "test"})
    assert len(registry) == 1 and agent.agent_id in registry
    assert registry.close(agent.agent_id) is agent
    assert registry.close(agent.agent_id) is None
    assert len(registry) == 0


def test_agents_have_unique_ids_and_a_real_buffer() -> None:
    """Ids are never reused and each agent carries its own 32 KiB buffer."""
    registry = AgentRegistry()
    first = registry.open("a", "/")
    registry.close(first.agent_id)
    second = registry.open("b", "/")
    assert second.agent_id != first.agent_id
    assert len(second.buffer) == AGENT_BUFFER_BYTES and second.buffer is not first.buffer


def test_record_message_counts() -> None:
    """Messages and bytes received are accounted per agent."""
    agent = AgentRegistry().open("a", "/")
    agent.record_message(5)
    agent.record_message(7)
    assert (agent.messages_in, agent.bytes_in) == (2, 12)
