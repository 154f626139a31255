"""Issue 22: the pack `pip install`ed from a clean clone works anywhere: its API, `flap` and its help."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.installed_pack import InstalledPack
from tests.support.locust_process import FAST_ARGS

pytestmark = pytest.mark.e2e  # real Locust processes from the installed package

RUN_TIMEOUT_S = 180

OWN_LOCUSTFILE = '''
"""A locustfile of one's own, in a folder unrelated to the clone."""
import flapping_pack
from flapping_pack import FlapPhases, FlappingUser

assert "site-packages" in flapping_pack.__file__, flapping_pack.__file__  # the installed package


class MyFlappingUser(FlappingUser):
    pass
'''


def _run(installed: InstalledPack, folder: Path, *command: str) -> subprocess.CompletedProcess[str]:
    outputs = ["--verdict-json", str(folder / "verdict.json"), "--html", str(folder / "report.html")]
    return subprocess.run(
        [*command, "--headless", *outputs, *FAST_ARGS],
        cwd=folder,
        env=installed.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def test_a_locustfile_of_ones_own_runs_green_from_the_installed_pack(installed_pack: InstalledPack, tmp_path) -> None:
    """`locust -f mine.py` in an unrelated folder, the pack from site-packages: green against the bundled server."""
    (tmp_path / "mine.py").write_text(OWN_LOCUSTFILE)
    run = _run(installed_pack, tmp_path, str(installed_pack.bin / "locust"), "-f", "mine.py")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is True
    assert verdict["connections"]["cycles_completed"] == 4 * 5
    assert "the bundled reference server" in run.stderr
    assert "flapping-pack" in (tmp_path / "report.html").read_text()  # the report's section, from the package


def test_flap_in_an_empty_folder_runs_the_bundled_locustfile(installed_pack: InstalledPack, tmp_path) -> None:
    """`flap --headless` with no locustfile anywhere runs the bundled one, green; its report has the chart's script."""
    run = _run(installed_pack, tmp_path, str(installed_pack.bin / "flap"))
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert json.loads((tmp_path / "verdict.json").read_text())["passed"] is True
    assert "uPlot" in (tmp_path / "report.html").read_text()  # pack/static/ came with the package


def test_the_installed_flap_help_lists_the_packs_options(installed_pack: InstalledPack, tmp_path) -> None:
    """`flap --help` from the installed package lists the pack's groups and options with their defaults."""
    result = subprocess.run(
        [str(installed_pack.bin / "flap"), "--help"],
        cwd=tmp_path,
        env=installed_pack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flapping-pack: flapping users" in result.stdout
    assert "--flap-connected-ms" in result.stdout
    assert "(default: 100.0)" in result.stdout
    assert "--max-fd-growth" in result.stdout
