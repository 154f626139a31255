"""Best-effort "die with the parent" for Linux, via prctl(PR_SET_PDEATHSIG)."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
# The flag by which a launcher (`childproc.ready`) asks a child program to die with it.
DIE_WITH_PARENT_FLAG = "--die-with-parent"

logger = logging.getLogger("childproc")


def add_die_with_parent_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--die-with-parent`` to a child program's parser."""
    parser.add_argument(
        DIE_WITH_PARENT_FLAG, action="store_true", help="exit when the parent process dies (Linux only)"
    )


def die_with_parent(sig: int = signal.SIGTERM, expected_parent_pid: int | None = None) -> bool:
    """Ask the kernel to send ``sig`` when our parent dies; return whether that was armed.

    The signal fires when the parent *thread* that forked us exits, so launch
    servers from the main thread. If the parent already died before this call,
    the signal is sent to ourselves at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
            return False
    except (OSError, AttributeError):
        logger.warning("prctl(PR_SET_PDEATHSIG) unavailable")
        return False
    # Closes the race where the parent died between fork and prctl.
    parent_gone = os.getppid() == 1 if expected_parent_pid is None else os.getppid() != expected_parent_pid
    if parent_gone:
        os.kill(os.getpid(), sig)
    return True
