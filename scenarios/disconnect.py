"""Disconnect styles: how a flapping user ends a connection, and the weighted mix it draws from.

Pure code (no sockets): the styles, the Locust request name of each, and `DisconnectMix`,
parsed from `--flap-disconnect` text such as ``clean:6,abrupt:2,reset:1,half-open:1``.
The schedule draws one style per cycle from the user's seeded random source.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

CLEAN = "clean"  # close frame, wait (bounded) for the server's close frame, then drop TCP
ABRUPT = "abrupt"  # TCP FIN without a close frame
RESET = "reset"  # TCP RST (SO_LINGER 0), no close frame
HALF_OPEN = "half-open"  # go silent: no close frame, no FIN, until the pause ends; then RST
HANDSHAKE_ABORT = "handshake-abort"  # send the upgrade request, drop TCP before reading the 101
STYLES = (CLEAN, ABRUPT, RESET, HALF_OPEN, HANDSHAKE_ABORT)

# The Locust request name (type WS) under which each style's disconnect is reported.
REQUEST_NAMES = {
    CLEAN: "close",
    ABRUPT: "abrupt",
    RESET: "reset",
    HALF_OPEN: "half-open",
    HANDSHAKE_ABORT: "handshake-abort",
}


@dataclass(frozen=True)
class DisconnectMix:
    """Disconnect styles with their relative weights; a cycle's style is drawn in proportion."""

    weights: tuple[tuple[str, float], ...] = ((CLEAN, 1.0),)  # (style, weight >= 0), at least one > 0

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError(f"no disconnect style given; choose from {', '.join(STYLES)}")
        seen: set[str] = set()
        for style, weight in self.weights:
            if style not in STYLES:
                raise ValueError(f"unknown disconnect style {style!r}; choose from {', '.join(STYLES)}")
            if style in seen:
                raise ValueError(f"disconnect style {style!r} given twice")
            seen.add(style)
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"weight of {style!r} must be a finite number >= 0, got {weight:g}")
        if sum(weight for _, weight in self.weights) <= 0:
            raise ValueError("the disconnect weights add up to zero")

    @classmethod
    def parse(cls, text: str) -> DisconnectMix:
        """Parse ``style[:weight],...``; a bare style has weight 1. ValueError with one line on bad input."""
        weights: list[tuple[str, float]] = []
        for item in text.split(","):
            if not item.strip():
                continue
            style, _, weight_text = (part.strip() for part in item.partition(":"))
            if not weight_text:
                weight = 1.0
            else:
                try:
                    weight = float(weight_text)
                except ValueError:
                    raise ValueError(f"weight of {style!r} is not a number: {weight_text!r}") from None
            weights.append((style, weight))
        return cls(tuple(weights))

    @property
    def styles(self) -> tuple[str, ...]:
        """The styles that can be drawn (weight > 0), in the order given."""
        return tuple(style for style, weight in self.weights if weight > 0)

    @functools.cached_property
    def _drawable(self) -> tuple[tuple[tuple[str, float], ...], float]:
        """The styles with a weight > 0, and the sum of their weights (worked out once per mix)."""
        drawable = tuple((style, weight) for style, weight in self.weights if weight > 0)
        return drawable, sum(weight for _, weight in drawable)

    def draw(self, rng: random.Random) -> str:
        """One style, drawn in proportion to the weights; a single possible style uses no randomness."""
        drawable, total = self._drawable
        if len(drawable) == 1:
            return drawable[0][0]  # keeps a seeded schedule's jitter the same as without a mix
        point = rng.random() * total
        for style, weight in drawable:
            point -= weight
            if point < 0:
                return style
        return drawable[-1][0]  # rounding at the very top of the range

    def __str__(self) -> str:
        """The canonical text form, which `parse` reads back (a weight of 1 is left out)."""
        return ",".join(style if weight == 1 else f"{style}:{weight:g}" for style, weight in self.weights)
