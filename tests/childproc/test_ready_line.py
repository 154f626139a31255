"""The readiness line a child program prints and its launcher parses."""

from __future__ import annotations

import pytest

from childproc.ready_line import ReadyLine


def test_ready_line_parses_back_to_port_and_pid() -> None:
    """The line the child prints parses back to its port and pid, with or without the newline."""
    line = ReadyLine("refserver")
    assert line.format(8765, 42) == "refserver ready port=8765 pid=42"
    assert line.parse(line.format(8765, 42) + "\n") == (8765, 42)


def test_ready_line_of_another_program_is_not_ready() -> None:
    """A launcher waiting for one program ignores another program's line and any malformed line."""
    line = ReadyLine("app-server")
    assert line.parse("refserver ready port=8765 pid=42") is None
    assert line.parse("app-server ready port=x pid=42") is None
    assert line.parse("app-server ready port=1 pid=2 extra") is None


def test_announce_prints_one_flushed_line(capsys: pytest.CaptureFixture[str]) -> None:
    """announce writes exactly the line and a newline to stdout."""
    ReadyLine("faultproxy").announce(5, 7)
    assert capsys.readouterr().out == "faultproxy ready port=5 pid=7\n"
