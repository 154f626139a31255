"""Fault decisions, without sockets."""

from __future__ import annotations

import pytest

from refserver.faults import FaultModes, is_rejected_handshake


@pytest.mark.parametrize("pct", range(0, 101))
def test_reject_pct_rejects_exactly_pct_of_every_hundred(pct: int) -> None:
    """Any 100 consecutive handshakes (aligned to 100) contain exactly pct rejections."""
    for start in (0, 100, 12_300):
        assert sum(is_rejected_handshake(i, pct) for i in range(start, start + 100)) == pct


def test_reject_pct_fifty_alternates() -> None:
    """At 50 % every second handshake is rejected, starting with the second."""
    assert [is_rejected_handshake(i, 50) for i in range(6)] == [False, True] * 3


def test_agent_freed_unless_dropped_with_fault() -> None:
    """Only a drop without close frame under --leak-agents-on-drop keeps the agent."""
    assert FaultModes().should_free_agent(dropped=True)
    assert FaultModes(leak_agents_on_drop=True).should_free_agent(dropped=False)
    assert not FaultModes(leak_agents_on_drop=True).should_free_agent(dropped=True)


def test_describe_names_enabled_faults_as_flags() -> None:
    """The start log names each enabled fault by its flag, and nothing when all are off."""
    assert FaultModes().describe() == []
    assert FaultModes(leak_fds=True, reject_pct=5).describe() == ["--leak-fds", "--reject-pct 5"]
