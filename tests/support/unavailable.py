"""A test that needs something this machine may lack: skip locally, fail under CI (env CI set).

Under CI a skip would pass a part of the suite untested, so there it is a failure.
"""

from __future__ import annotations

import os

import pytest


def unavailable(message: str) -> None:
    """Skip the test with `message`, or fail it when the CI variable is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this test cannot skip)")
    pytest.skip(message)
