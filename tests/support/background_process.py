"""A process in the background with its output collected, for tests that run several at once (master, workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path


class Process:
    """A background process whose output is collected by a thread; killed with its group at the end."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout_s: float) -> int:
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout_s} s:\n{self.output[-3000:]}") from None
        self._reader.join(timeout=2)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait_for(self, needle: str, deadline_s: float) -> None:
        """Wait until `needle` is printed; fail after the deadline or if the process ends first."""
        end = time.monotonic() + deadline_s
        while needle not in self.output:
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                if needle in self.output:
                    return
                raise AssertionError(
                    f"ended ({self.process.returncode}) before printing {needle!r}:\n{self.output[-3000:]}"
                )
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} not printed within {deadline_s} s:\n{self.output[-3000:]}")
            time.sleep(0.05)
