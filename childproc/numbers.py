"""Ranged-number parsing for every command line here: the pack's options, refserver's and faultproxy's.

Pure (no sockets, gevent or Locust), so the child programs import it without pulling in
the pack. A parser takes a string (or an already typed value) and returns the number, or
raises ValueError with the one line the user sees.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

Number = TypeVar("Number", int, float)

# What a value that does not parse is not, by the kind asked for.
_NOUNS: dict[type, str] = {int: "a whole number", float: "a number"}


def parse_number(value: Any, kind: type[Number], *, noun: str | None = None) -> Number:
    """``value`` as a finite ``kind``; ValueError ``not <noun>: 'text'`` otherwise (noun by kind unless given)."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    text = str(value).strip()
    try:
        number = kind(text)
    except ValueError:
        raise ValueError(f"not {noun or _NOUNS[kind]}: {text!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"not a finite number: {text!r}")
    return number


@dataclass(frozen=True)
class NumberRange:
    """The numbers an option allows, and how that reads in a message."""

    low: float | None = None  # smallest allowed number; None for no lower bound
    high: float | None = None  # largest allowed number; None for no upper bound
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False  # high itself is not allowed
    at_least: str = ">="  # how a lone closed lower bound reads: ">= 0" (the pack), "at least 0" (child programs)

    def __contains__(self, number: float) -> bool:
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        return self.high is None or (number < self.high if self.high_open else number <= self.high)

    def describe(self) -> str:
        """The range in words: ``between 1 and 10``, ``in [0, 1)``, ``>= 0``, ``> 0``, ``at least 1``."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            if not (self.low_open or self.high_open):
                return f"between {low:g} and {high:g}"
            return f"in {'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}"
        if low is not None:
            return f"> {low:g}" if self.low_open else f"{self.at_least} {low:g}"
        if high is not None:
            return f"< {high:g}" if self.high_open else f"<= {high:g}"
        return "any number"


def number_in(
    kind: type[Number], allowed: NumberRange, *, noun: str | None = None, what: str = ""
) -> Callable[[Any], Number]:
    """A parser of a ``kind`` in ``allowed``; out of range says ``must be <what><range>, got <value as given>``."""

    def parse(value: Any) -> Number:
        number = parse_number(value, kind, noun=noun)
        if number not in allowed:
            raise ValueError(f"must be {what}{allowed.describe()}, got {value}")
        return number

    return parse


def argparse_type(parse: Callable[[str], Number], name: str) -> Callable[[str], Number]:
    """``parse`` as an argparse ``type=``: its ValueError becomes the usage error's message."""

    def parse_argument(text: str) -> Number:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_argument.__name__ = name  # argparse names the type in some messages
    return parse_argument


def cli_number(
    kind: type[Number], low: float, high: float | None = None, *, noun: str | None = None
) -> Callable[[str], Number]:
    """An argparse ``type=`` of the child programs: a ``kind`` from ``low`` to ``high`` (or "at least low")."""
    allowed = NumberRange(low=low, high=high, at_least="at least")
    return argparse_type(number_in(kind, allowed, noun=noun), kind.__name__)
