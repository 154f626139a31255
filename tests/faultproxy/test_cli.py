"""Command-line parsing and the launcher's pure helpers, without processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faultproxy.cli import AddressError, build_parser, parse_address, parse_config
from faultproxy.launch import READY_LINE, build_args, format_address
from faultproxy.toxics import ToxicSettings


def test_parse_address_accepts_loopback() -> None:
    """IPv4 loopback, bracketed ::1 and localhost parse into host and port."""
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("127.1.2.3:8080") == ("127.1.2.3", 8080)
    assert parse_address("[::1]:9") == ("::1", 9)
    assert parse_address("localhost:80") == ("localhost", 80)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1:80", "not a loopback address"),
        ("0.0.0.0:0", "not a loopback address"),
        ("example.com:80", "not a loopback address"),
        ("[::]:80", "not a loopback address"),
        ("::1:80", "in brackets"),
        ("127.0.0.1", "not HOST:PORT"),
        ("127.0.0.1:http", "not an integer"),
        ("127.0.0.1:70000", "between 0 and 65535"),
    ],
)
def test_parse_address_refuses(text: str, message: str) -> None:
    """Anything off this machine, or malformed, is refused with a reason."""
    with pytest.raises(AddressError, match=message):
        parse_address(text)


def test_parse_config_defaults() -> None:
    """Only --upstream is required; all toxics are off and a seed is drawn."""
    config = parse_config(["--upstream", "127.0.0.1:8765"])
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 0)
    assert (config.upstream_host, config.upstream_port) == ("127.0.0.1", 8765)
    assert config.toxics == ToxicSettings()
    assert isinstance(config.seed, int)


def test_parse_config_toxics() -> None:
    """Every toxic flag lands in ToxicSettings."""
    config = parse_config(
        [
            "--upstream=[::1]:1",
            "--latency-ms=100",
            "--jitter-ms=20",
            "--bandwidth-kbps=64",
            "--reset-pct=2.5",
            "--reset-after-ms=300",
            "--seed=7",
        ]
    )
    assert config.toxics == ToxicSettings(
        latency_ms=100, jitter_ms=20, bandwidth_kbps=64, reset_pct=2.5, reset_after_ms=300
    )
    assert config.seed == 7


@pytest.mark.parametrize(
    "argv",
    [
        ["--upstream", "192.168.1.10:80"],
        ["--upstream", "127.0.0.1:80", "--listen", "0.0.0.0:0"],
        ["--upstream", "127.0.0.1:0"],
    ],
)
def test_parse_config_refuses_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A refused address exits 2 with exactly one stderr line."""
    with pytest.raises(SystemExit) as excinfo:
        parse_config(argv)
    assert excinfo.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "refused" in stderr


@pytest.mark.parametrize("argv", [["--reset-pct", "101"], ["--latency-ms", "-1"], ["--bandwidth-kbps", "x"]])
def test_parse_config_refuses_bad_numbers(argv: list[str]) -> None:
    """Out-of-range toxic values fail at parse time with exit 2."""
    with pytest.raises(SystemExit) as excinfo:
        parse_config(["--upstream", "127.0.0.1:80", *argv])
    assert excinfo.value.code == 2


def test_parse_ready_line() -> None:
    """Only the exact readiness line yields a port and pid."""
    assert READY_LINE.parse("faultproxy ready port=8765 pid=42\n") == (8765, 42)
    assert READY_LINE.parse("refserver ready port=8765 pid=42") is None


def test_build_args_leaves_out_toxics_that_are_off() -> None:
    """The launcher passes only the toxics that are on, and brackets IPv6 hosts."""
    assert build_args("127.0.0.1", 80) == ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:80"]
    toxics = ToxicSettings(latency_ms=5, reset_pct=2.5)
    assert build_args("::1", 80, listen_host="::1", toxics=toxics, seed=0) == [
        "--listen",
        "[::1]:0",
        "--upstream",
        "[::1]:80",
        "--latency-ms",
        "5",
        "--reset-pct",
        "2.5",
        "--seed",
        "0",
    ]
    assert format_address("::1", 5) == "[::1]:5"


def test_readme_option_table_matches_the_parser() -> None:
    """The README's option table lists exactly the flags the parser knows."""
    readme = (Path(__file__).resolve().parents[2] / "faultproxy" / "README.md").read_text()
    table = readme.split("## Options", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z-]+)", table, re.M))
    known = {flag for action in build_parser()._actions for flag in action.option_strings if flag.startswith("--")}
    assert documented == known - {"--help"}


def test_toxic_arguments_parse_back_to_the_same_settings() -> None:
    """The flags a launcher writes for some toxics are parsed by the proxy into exactly those toxics."""
    toxics = ToxicSettings(latency_ms=100, jitter_ms=20, bandwidth_kbps=64, reset_pct=2.5, reset_after_ms=300)
    assert parse_config(["--upstream", "127.0.0.1:1", *toxics.arguments()]).toxics == toxics
    assert ToxicSettings().arguments() == []
