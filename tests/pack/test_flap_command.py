"""The `flap` command: Locust with the pack loaded, its help listing the pack's options, grouped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pack.command import BUNDLED_LOCUSTFILE, locustfile_arguments
from pack.options import OPTION_GROUPS, OPTIONS, help_line, option_group
from pack.version import VERSION
from tests.support.locust_process import ROOT


@pytest.fixture
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder is an empty one, with no LOCUST_* variables."""
    for name in list(os.environ):
        if name.startswith("LOCUST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_flap_runs_the_bundled_locustfile_when_none_is_named(empty_folder: Path) -> None:
    """No -f, no locust.conf and no ./locustfile.py: the bundled locustfile."""
    assert locustfile_arguments(["--headless", "-u", "3"]) == ["-f", BUNDLED_LOCUSTFILE]


def test_a_flap_worker_takes_the_masters_locustfile(empty_folder: Path) -> None:
    """`flap --worker` with no locustfile named fetches the master's (-f -)."""
    assert locustfile_arguments(["--worker", "--master-host", "10.0.0.2"]) == ["-f", "-"]


def test_a_named_or_present_locustfile_is_left_alone(empty_folder: Path) -> None:
    """-f, a locust.conf's locustfile or a ./locustfile.py: flap adds nothing."""
    assert locustfile_arguments(["-f", "mine.py"]) == []
    assert locustfile_arguments(["--locustfile=mine.py", "--worker"]) == []
    (empty_folder / "locust.conf").write_text("locustfile = other.py\n")
    assert locustfile_arguments([]) == []
    (empty_folder / "locust.conf").unlink()
    (empty_folder / "locustfile.py").write_text("")
    assert locustfile_arguments([]) == []


def test_the_repositorys_locustfile_is_the_bundled_one() -> None:
    """./locustfile.py is a link to the locustfile the package installs, so there is one."""
    assert (ROOT / "locustfile.py").resolve() == Path(BUNDLED_LOCUSTFILE).resolve()


def test_the_package_version_is_the_one_in_pack_version() -> None:
    """flapping_pack.__version__ is pack/version.py's VERSION, which pyproject.toml reads too."""
    import flapping_pack

    assert flapping_pack.__version__ == VERSION
    assert 'version = { attr = "pack.version.VERSION" }' in (ROOT / "pyproject.toml").read_text()


def test_every_option_belongs_to_a_help_group() -> None:
    """Each option is in one of the groups (a new prefix goes into OPTION_GROUPS); no group is empty."""
    ungrouped = [spec.flag for spec in OPTIONS if option_group(spec) not in {title for title, _, _ in OPTION_GROUPS}]
    assert not ungrouped, f"add a prefix for {ungrouped} to OPTION_GROUPS in pack/options.py"
    assert {option_group(spec) for spec in OPTIONS} == {title for title, _, _ in OPTION_GROUPS}


def test_flap_help_lists_every_option_of_the_table_with_its_default() -> None:
    """`flap --help` (python -m pack.command, the console script's function) prints each option's
    line from the option table, under its group, after Locust's own options."""
    result = subprocess.run(
        [sys.executable, "-m", "pack.command", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = "".join(result.stdout.split())  # argparse wraps lines
    assert "".join("--spawn-rate".split()) in printed  # Locust's own
    for title, _, _ in OPTION_GROUPS:
        assert f"{title}:".replace(" ", "") in printed
    for spec in OPTIONS:
        assert spec.flag in result.stdout
        assert "".join(help_line(spec).split()) in printed, spec.flag
    groups_in_order = [printed.index(f"{title}:".replace(" ", "")) for title, _, _ in OPTION_GROUPS]
    assert groups_in_order == sorted(groups_in_order)
