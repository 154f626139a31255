"""The pack's version: one place, read by pyproject.toml (the package's version), `flapping_pack.__version__`
and the master's check of each worker's pack (pack/worker_link.py)."""

from __future__ import annotations

VERSION = "0.1.0"


def worker_refusal(master_version: str, worker_version: str | None) -> str | None:
    """Why a master refuses a worker's pack, in one line naming both versions; None when they are the same."""
    if worker_version == master_version:
        return None
    return f"the worker's flapping-pack is {worker_version or 'unknown'}, the master's is {master_version}"
