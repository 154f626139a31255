"""The disconnect mix: parsing `--flap-disconnect`, its errors, and seeded draws."""

import random
from collections import Counter

import pytest

from scenarios.disconnect import ABRUPT, CLEAN, HALF_OPEN, HANDSHAKE_ABORT, REQUEST_NAMES, RESET, STYLES, DisconnectMix


def test_weights_and_bare_names_are_parsed() -> None:
    """`style:weight` items keep their weight, a bare style weighs 1, spaces are ignored."""
    mix = DisconnectMix.parse(" clean:6, abrupt:2 ,reset,half-open:0.5")
    assert mix.weights == ((CLEAN, 6.0), (ABRUPT, 2.0), (RESET, 1.0), (HALF_OPEN, 0.5))


def test_the_default_is_clean_only() -> None:
    """Without the option every cycle closes cleanly."""
    assert DisconnectMix().styles == (CLEAN,)
    assert str(DisconnectMix()) == "clean"


def test_the_text_form_reads_back() -> None:
    """`str` gives the canonical text (weight 1 left out), which parses to the same mix."""
    mix = DisconnectMix.parse("clean:6,abrupt:2,reset:1,half-open:1,handshake-abort:0")
    assert str(mix) == "clean:6,abrupt:2,reset,half-open,handshake-abort:0"
    assert DisconnectMix.parse(str(mix)) == mix


def test_a_zero_weight_style_is_never_drawn() -> None:
    """Weight 0 turns a style off."""
    mix = DisconnectMix.parse("clean:0,reset:1")
    assert mix.styles == (RESET,)
    rng = random.Random(5)
    assert {mix.draw(rng) for _ in range(100)} == {RESET}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clean,teleport", f"unknown disconnect style 'teleport'; choose from {', '.join(STYLES)}"),
        ("clean:x", "weight of 'clean' is not a number: 'x'"),
        ("abrupt:-1", "weight of 'abrupt' must be a finite number >= 0, got -1"),
        ("reset:inf", "weight of 'reset' must be a finite number >= 0, got inf"),
        ("clean:0,abrupt:0", "the disconnect weights add up to zero"),
        ("clean,clean:2", "disconnect style 'clean' given twice"),
        ("", f"no disconnect style given; choose from {', '.join(STYLES)}"),
        (" , ", f"no disconnect style given; choose from {', '.join(STYLES)}"),
    ],
)
def test_bad_mixes_are_refused_with_one_line(text: str, message: str) -> None:
    """Unknown styles, bad or negative weights, a zero total and repeats each get their own line."""
    with pytest.raises(ValueError) as raised:
        DisconnectMix.parse(text)
    assert str(raised.value) == message


def test_a_single_style_draws_without_randomness() -> None:
    """A mix of one style does not consume the random source (seeded jitter stays as before)."""
    rng = random.Random(11)
    state = rng.getstate()
    assert DisconnectMix.parse("abrupt").draw(rng) == ABRUPT
    assert rng.getstate() == state


def test_seeded_draws_repeat_and_follow_the_weights() -> None:
    """The same seed draws the same styles; over many draws each style's share is near its weight."""
    mix = DisconnectMix.parse("clean:6,abrupt:2,reset:1,half-open:1")

    def draws(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [mix.draw(rng) for _ in range(20_000)]

    first = draws(3)
    assert first == draws(3)
    assert first != draws(4)
    shares = Counter(first)
    for style, expected in ((CLEAN, 0.6), (ABRUPT, 0.2), (RESET, 0.1), (HALF_OPEN, 0.1)):
        assert shares[style] / 20_000 == pytest.approx(expected, abs=0.015)
    assert HANDSHAKE_ABORT not in shares


def test_every_style_has_its_own_request_name() -> None:
    """Each style is a stats row of its own; the clean one keeps the name `close`."""
    assert set(REQUEST_NAMES) == set(STYLES)
    assert len(set(REQUEST_NAMES.values())) == len(STYLES)
    assert REQUEST_NAMES[CLEAN] == "close"
    assert not {"connect", "echo"} & set(REQUEST_NAMES.values())
