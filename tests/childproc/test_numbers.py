"""Ranged-number parsing shared by the pack's options and the child programs' command lines."""

from __future__ import annotations

import argparse

import pytest

from childproc.numbers import NumberRange, cli_number, number_in, parse_number


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("soon", float, "not a number: 'soon'"),
        ("2.5", int, "not a whole number: '2.5'"),
        ("inf", float, "not a finite number: 'inf'"),
        ("nan", float, "not a finite number: 'nan'"),
        (True, int, "not a number"),
    ],
)
def test_parse_number_refuses_what_is_not_a_finite_number(value: object, kind: type, message: str) -> None:
    """A value that is no finite number of the kind asked for is refused with one line naming it."""
    with pytest.raises(ValueError) as excinfo:
        parse_number(value, kind)
    assert str(excinfo.value) == message


def test_parse_number_takes_typed_values_and_padded_text() -> None:
    """Already typed values pass through, and text is stripped before it is parsed."""
    assert parse_number(" 7 ", int) == 7
    assert parse_number(2.5, float) == 2.5


@pytest.mark.parametrize(
    ("allowed", "words"),
    [
        (NumberRange(low=1, high=10), "between 1 and 10"),
        (NumberRange(low=0, high=1, high_open=True), "in [0, 1)"),
        (NumberRange(low=0), ">= 0"),
        (NumberRange(low=0, low_open=True), "> 0"),
        (NumberRange(low=1, at_least="at least"), "at least 1"),
        (NumberRange(high=5), "<= 5"),
    ],
)
def test_number_range_reads_as_words(allowed: NumberRange, words: str) -> None:
    """Each kind of range describes itself the way the messages say it."""
    assert allowed.describe() == words


def test_number_in_range_bounds_are_inclusive_unless_open() -> None:
    """Closed bounds admit the bound itself; open ones refuse it, quoting the value as given."""
    fraction = number_in(float, NumberRange(low=0, high=1, high_open=True))
    assert fraction("0") == 0
    with pytest.raises(ValueError) as excinfo:
        fraction("1")
    assert str(excinfo.value) == "must be in [0, 1), got 1"
    port = number_in(int, NumberRange(low=1, high=65535), what="a port ")
    with pytest.raises(ValueError) as excinfo:
        port("0")
    assert str(excinfo.value) == "must be a port between 1 and 65535, got 0"


def test_cli_number_raises_argparse_errors_in_the_child_programs_words() -> None:
    """The child programs' parsers say "at least" and use their own noun for text that is no number."""
    workers = cli_number(int, 1, 1024, noun="an integer")
    assert workers("4") == 4
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be between 1 and 1024, got 0$"):
        workers("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^not an integer: 'x'$"):
        workers("x")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be at least 0, got -1$"):
        cli_number(float, 0, noun="a number")("-1")
