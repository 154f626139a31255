"""The README stays true: its quick start, its option table and CI's command."""

from __future__ import annotations

import re

from pack.options_doc import markdown_table
from tests.support.locust_process import ROOT

README = (ROOT / "README.md").read_text()


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    """The first code block of the quick start holds the main job and the tests."""
    assert _quick_start_commands() == ["./flap.sh", "./test.sh"]


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run calls the README's test command."""
    assert _quick_start_commands()[1] in (ROOT / ".ci" / "run").read_text()


def test_the_option_table_matches_the_code() -> None:
    """The README's option table is the one generated from the option specs."""
    between = README.split("<!-- options:start -->\n", 1)[1].split("\n<!-- options:end -->", 1)[0]
    assert between.strip() == markdown_table().strip(), "regenerate with: python -m pack.options_doc"


def test_locust_conf_sets_only_known_options() -> None:
    """Every key in locust.conf is a Locust option or one of the pack's."""
    from pack.options import OPTIONS

    ours = {spec.flag[2:] for spec in OPTIONS}
    locust_own = {"locustfile", "users", "spawn-rate", "run-time", "host", "headless"}
    for line in (ROOT / "locust.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key = line.split("=", 1)[0].strip()
            assert key in ours | locust_own, key


def test_the_python_conversation_in_the_readme_is_the_example_that_runs() -> None:
    """Every line of the README's Python conversation stands in examples/custom_user.py (which a test runs)."""
    section = README.split("### A conversation in Python", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block
    example = {line.strip() for line in (ROOT / "examples" / "custom_user.py").read_text().splitlines()}
    missing = [line for line in block.group(1).splitlines() if line.strip() and line.strip() not in example]
    assert not missing, missing
