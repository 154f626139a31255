"""The README's main command, `./flap.sh`, run as a user runs it: default options, the bundled server."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.support.locust_process import ROOT

pytestmark = pytest.mark.e2e  # real Locust processes (./flap.sh)

RUN_DEADLINE_S = 240  # about 15 s of run; the first call may also check the venv's packages


def flap_sh(out_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`./flap.sh [args]` from the repository, its three result files sent to `out_dir` instead of results/.

    Everything else is the defaults of locust.conf; LOCUST_* variables of the test's own
    environment are left out so that they do not change them.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
    outputs = [
        "--verdict-json", str(out_dir / "verdict.json"),
        "--junit-xml", str(out_dir / "verdict.junit.xml"),
        "--resource-csv", str(out_dir / "resources.csv"),
    ]  # fmt: skip
    return subprocess.run(
        ["./flap.sh", *outputs, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
    )


def test_flap_sh_with_default_options_passes_and_writes_its_files(tmp_path: Path) -> None:
    """`./flap.sh` exits 0 and writes the verdict JSON, the JUnit XML and the resource CSV."""
    run = flap_sh(tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is True
    assert verdict["connections"]["cycles_completed"] == 2 * 10 * 20  # locust.conf: 10 users x 20 cycles, 2 rounds
    assert "the bundled reference server" in run.stderr
    suite = ElementTree.parse(tmp_path / "verdict.junit.xml").getroot()
    cases = suite.iter("testcase")
    assert {case.get("name") for case in cases} >= {"connect_success_pct", "memory_growth_mb", "fd_growth"}
    assert not list(suite.iter("failure"))
    with open(tmp_path / "resources.csv") as file:
        samples = list(csv.DictReader(file))
    assert {sample["phase"] for sample in samples} >= {"baseline", "flapping", "settle"}


def test_flap_sh_against_a_leaking_server_exits_3(tmp_path: Path) -> None:
    """`./flap.sh --ref-server-fault leak-memory` fails the verdict with exit code 3, as the README says."""
    run = flap_sh(tmp_path, "--ref-server-fault", "leak-memory")
    assert run.returncode == 3, (run.stdout + run.stderr)[-3000:]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    failed = {check["name"] for check in verdict["checks"] if check["status"] == "fail"}
    assert "memory_growth_mb" in failed
