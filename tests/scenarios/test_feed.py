"""The pure feed: the file's `feed:`, which targets get which seq next, and when rounds are due."""

from __future__ import annotations

import pytest

from scenarios.conversation import ConversationError, Variables
from scenarios.feed import FeedSchedule, FeedTargets
from scenarios.protocols import load_conversation_text

MQTT_FEED = """
protocol: mqtt
open:
  - subscribe: flap/${user}
feed:
  every_ms: 20
  steps:
    - publish: flap/${target}
      payload: {seq: "${seq}"}
      qos: 1
"""


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_feed_step_is_named_after_its_action_and_takes_target_and_seq() -> None:
    """`publish: flap/${target}` with payload {seq: "${seq}"} resolves per target; its row name is `publish`."""
    feed = load_conversation_text(MQTT_FEED, "f.yaml").feed
    assert feed is not None and feed.every_ms == 20.0
    (step,) = feed.steps
    assert step.name == "publish"
    variables = Variables(user=9, values={"target": "3", "seq": "7"})
    assert step.resolved(variables) == "flap/3"
    assert step.option("payload", variables) == {"seq": "7"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("every_ms: 20", "every_ms: 5"), "f.yaml: feed: every_ms must be >= 10 (got 5)"),
        (("every_ms: 20", "every_ms: soon"), "f.yaml: feed: every_ms must be a number of milliseconds"),
        (("every_ms: 20", "every_ms: 20\n  often: 1"), "f.yaml: feed: unknown key 'often' (allowed: every_ms, steps)"),
        (
            ("publish: flap/${target}", "publish: flap/#"),
            "f.yaml: feed step 1: publish: topic name contains a wildcard",
        ),
        (("subscribe: flap/${user}", "subscribe: flap/${target}"), "f.yaml: open step 1: unknown variable ${target}"),
    ],
)
def test_a_bad_feed_is_one_line_naming_the_file(change: tuple[str, str], error: str) -> None:
    """every_ms below 10, a stray key, a bad step, ${target} outside the feed: a ConversationError of one line."""
    with pytest.raises(ConversationError) as raised:
        load_conversation_text(MQTT_FEED.replace(*change), "f.yaml")
    assert str(raised.value).startswith(error) and "\n" not in str(raised.value)


def test_each_active_target_gets_its_own_counter_from_one() -> None:
    """Rounds give every active target its next seq; a target that left and came back goes on where it was."""
    targets = FeedTargets()
    targets.add(0)
    targets.add(2)
    assert targets.round() == ((0, 1), (2, 1))
    for target, seq in targets.round():
        targets.sent(target, seq)
    targets.remove(0)
    assert targets.round() == ((2, 2),)
    targets.sent(2, 2)
    targets.add(0)
    assert targets.round() == ((2, 3), (0, 2))
    assert targets.active == (2, 0)


def test_a_target_whose_steps_failed_gets_the_same_seq_again() -> None:
    """Nothing counts until `sent`: a failed publish is retried with its number, so no gap is made by the feeder."""
    targets = FeedTargets()
    targets.add(1)
    assert targets.round() == ((1, 1),)
    assert targets.round() == ((1, 1),)
    targets.sent(1, 1)
    assert targets.round() == ((1, 2),) and targets.last_sent(1) == 1


def test_rounds_are_due_every_period_and_a_late_one_does_not_bunch_up_the_next() -> None:
    """Due at once, then every 50 ms from the last due time; after a long stall the next is a period from now."""
    clock = Clock()
    schedule = FeedSchedule(0.05, clock)
    assert schedule.wait_s() == 0.0
    clock.now += 0.01
    schedule.taken()
    assert schedule.wait_s() == pytest.approx(0.04)
    clock.now += 0.04
    assert schedule.wait_s() == 0.0
    schedule.taken()
    clock.now += 1.0  # a stall
    schedule.taken()
    assert schedule.wait_s() == pytest.approx(0.05)


def test_a_feed_naming_target_without_worker_is_refused_across_workers() -> None:
    """`flap/${target}` alone would feed every worker's user of that number: refused in one line across workers."""
    feed = load_conversation_text(MQTT_FEED, "f.yaml").feed
    assert feed is not None and feed.target_without_worker == (1,)
    with pytest.raises(ConversationError) as raised:
        feed.check_across_workers()
    assert str(raised.value) == (
        "feed step 1: names ${target} without ${worker}, but with Locust workers each worker numbers "
        "its users from 0 (name both, as in flap/${worker}-${target})"
    )


def test_a_feed_naming_target_and_worker_is_fine_across_workers() -> None:
    """`flap/${worker}-${target}` (as examples/mqtt-stream.yaml) names each user of a distributed run once."""
    text = MQTT_FEED.replace("flap/${user}", "flap/${worker}-${user}").replace(
        "flap/${target}", "flap/${worker}-${target}"
    )
    feed = load_conversation_text(text, "f.yaml").feed
    assert feed is not None and feed.target_without_worker == ()
    feed.check_across_workers()
    (step,) = feed.steps
    assert step.resolved(Variables(user=9, worker=1, values={"target": "3", "seq": "7"})) == "flap/1-3"
