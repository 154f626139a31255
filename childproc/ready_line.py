"""The one stdout line by which a child program says it listens: ``<program> ready port=<PORT> pid=<PID>``."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReadyLine:
    """The readiness line of one program: the child prints it, the launcher waits for it."""

    program: str  # first word of the line, e.g. "refserver"
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)  # parses the line

    def __post_init__(self) -> None:
        pattern = re.compile(rf"^{re.escape(self.program)} ready port=(\d+) pid=(\d+)$")
        object.__setattr__(self, "_pattern", pattern)

    def format(self, port: int, pid: int) -> str:
        """The line, without its newline."""
        return f"{self.program} ready port={port} pid={pid}"

    def parse(self, line: str) -> tuple[int, int] | None:
        """Return ``(port, pid)`` from a readiness line of this program, or None for any other line."""
        match = self._pattern.match(line.strip())
        return (int(match.group(1)), int(match.group(2))) if match else None

    def announce(self, port: int, pid: int) -> None:
        """Print the line to stdout and flush it, so a launcher sees it at once."""
        sys.stdout.write(self.format(port, pid) + "\n")
        sys.stdout.flush()
