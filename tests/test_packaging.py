"""The package holds what the pack needs: every package folder, every file it reads from disk, one version."""

from __future__ import annotations

import fnmatch
import tomllib

from tests.support.locust_process import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
TOP_LEVEL_PACKAGES = ("pack", "scenarios", "monitors", "refserver", "faultproxy", "childproc")
NOT_SHIPPED = {"README.md"}  # a folder's notes for readers of the source


def test_every_package_folder_is_in_the_package() -> None:
    """Each folder with an __init__.py under the pack's packages is listed in pyproject.toml."""
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL_PACKAGES
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == set(SETUPTOOLS["packages"])
    assert "flapping_pack" in SETUPTOOLS["py-modules"]


def test_every_data_file_is_in_the_package() -> None:
    """Each file that is not Python source under a package is matched by its package-data globs."""
    package_data: dict[str, list[str]] = SETUPTOOLS["package-data"]
    missing = []
    for package in SETUPTOOLS["packages"]:
        folder = ROOT / package.replace(".", "/")
        for path in folder.rglob("*"):
            relative = path.relative_to(folder).as_posix()
            if not path.is_file() or path.name in NOT_SHIPPED or "__pycache__" in relative:
                continue
            if path.suffix == ".py" and (path.parent / "__init__.py").exists():
                continue  # a module of a listed package
            globs = package_data.get(package, [])
            if not any(fnmatch.fnmatch(relative, glob) for glob in globs):
                missing.append(f"{package}: {relative}")
    assert not missing, missing


def test_the_dependencies_are_requirements_txt() -> None:
    """The package's dependencies are read from requirements.txt: one pinned list."""
    assert "dependencies" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip()]
    requirements = [line for line in lines if not line.startswith("#")]
    assert requirements and all("==" in line for line in requirements)  # pinned, no -r or options


def test_the_flap_command_is_the_console_script() -> None:
    """`flap` is pack.command:main, the function ./flap.sh runs."""
    assert PYPROJECT["project"]["scripts"] == {"flap": "pack.command:main"}
    assert "python -m pack.command" in (ROOT / "flap.sh").read_text()
