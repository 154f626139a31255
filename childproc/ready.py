"""Start ``python -m <package>`` as a child process and wait for its readiness line.

Plain ``subprocess`` plus polling of unlinked temporary files: no threads, no pipes
that can fill up, nothing that breaks under gevent's monkey-patching. Free of pytest,
gevent and Locust, so tests and the Locust plugin share it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, TypeVar

from childproc.parent_death import DIE_WITH_PARENT_FLAG
from childproc.ready_line import ReadyLine

_POLL_S = 0.02
_STDERR_TAIL_CHARS = 4000
# The folder that holds the packages, so `-m <package>` works from any cwd.
IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)


def _open_capture(prefix: str) -> tuple[int, BinaryIO]:
    # Separate open file descriptions: the child writes at its own offset, we read at ours.
    write_fd, path = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".log")
    reader = open(path, "rb")  # noqa: SIM115 - lives as long as the child
    os.unlink(path)  # nothing to clean up later; gone once both ends close
    return write_fd, reader


def _read_all(reader: BinaryIO) -> str:
    reader.seek(0)
    return reader.read().decode("utf-8", errors="replace")


class ReadyProcess:
    """A started child; stop it with ``stop()`` or by leaving a ``with`` block."""

    def __init__(
        self, process: subprocess.Popen[bytes], host: str, port: int, pid: int, stdout: BinaryIO, stderr: BinaryIO
    ) -> None:
        self.process = process  # the `python -m <package>` child
        self.host = host  # address clients dial
        self.port = port  # the port the child reported as bound
        self.pid = pid  # pid from the readiness line (a supervisor's, with worker processes)
        self._stdout = stdout  # read end of the child's stdout capture
        self._stderr = stderr  # read end of the child's stderr capture
        self._final_output: tuple[str, str] | None = None  # captures, kept after stop()

    @property
    def netloc(self) -> str:
        """``HOST:PORT`` to put in a URL (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def returncode(self) -> int | None:
        """Exit code once the process has ended, else None."""
        return self.process.poll()

    def stdout_text(self) -> str:
        """Everything the child wrote to stdout so far."""
        return self._final_output[0] if self._final_output else _read_all(self._stdout)

    def stderr_text(self) -> str:
        """Everything the child logged to stderr so far."""
        return self._final_output[1] if self._final_output else _read_all(self._stderr)

    def stop(self, timeout_s: float = 5.0) -> int:
        """Send SIGTERM, SIGKILL after ``timeout_s``; return the exit code (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        if self._final_output is None:
            self._final_output = (_read_all(self._stdout), _read_all(self._stderr))
            self._stdout.close()
            self._stderr.close()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_Child = TypeVar("_Child", bound=ReadyProcess)


def start_ready_process(
    package: str,
    args: Sequence[str],
    *,
    ready_line: ReadyLine,
    host: str,
    wrap: Callable[[subprocess.Popen[bytes], str, int, int, BinaryIO, BinaryIO], _Child],
    error: type[Exception],
    env: Mapping[str, str | None] | None = None,
    timeout_s: float = 10.0,
    die_with_parent: bool = True,
) -> _Child:
    """Start ``python -m package *args``; return ``wrap(...)`` once it printed its readiness line.

    ``env`` overrides variables of the inherited environment; a None value removes one.
    With ``die_with_parent`` the child gets SIGTERM when the thread that started it exits,
    so call this from the main thread (gevent greenlets are fine: they all run on it).
    The child gets a session of its own, so a Ctrl-C in the terminal does not stop it
    before its owner does. Raises ``error`` with the child's stderr if it exits or stays
    silent for ``timeout_s``.
    """
    child_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    python_path = child_env.get("PYTHONPATH")
    child_env["PYTHONPATH"] = IMPORT_ROOT + (os.pathsep + python_path if python_path else "")
    command = [sys.executable, "-m", package, *([DIE_WITH_PARENT_FLAG] if die_with_parent else []), *args]

    stdout_fd, stdout_reader = _open_capture(package)
    stderr_fd, stderr_reader = _open_capture(package)
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout_fd, stderr=stderr_fd, env=child_env, start_new_session=True
        )
    except BaseException:
        stdout_reader.close()
        stderr_reader.close()
        raise
    finally:
        os.close(stdout_fd)
        os.close(stderr_fd)

    deadline = time.monotonic() + timeout_s
    while True:
        first_line = _read_all(stdout_reader).partition("\n")
        if first_line[1]:
            ready = ready_line.parse(first_line[0])
            if ready is not None:
                port, pid = ready
                return wrap(process, host, port, pid, stdout_reader, stderr_reader)
            problem = f"printed {first_line[0]!r} instead of the readiness line"
            break
        if process.poll() is not None:
            problem = f"exited with code {process.returncode} before it was ready"
            break
        if time.monotonic() > deadline:
            problem = f"was not ready after {timeout_s:g} s"
            break
        time.sleep(_POLL_S)

    child = wrap(process, host, 0, process.pid, stdout_reader, stderr_reader)
    child.stop(timeout_s=2.0)
    stderr = child.stderr_text()[-_STDERR_TAIL_CHARS:]
    raise error(f"{package} {' '.join(args)} {problem}; its stderr:\n{stderr}")
