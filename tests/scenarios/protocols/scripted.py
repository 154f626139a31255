"""Drive a ConnectionFraming as the I/O layer does, with scripted server frames and no socket."""

from __future__ import annotations

from collections.abc import Iterable

from scenarios.conversation import MATCHED, Step, Variables
from scenarios.protocols import ConnectionFraming

TIMED_OUT = "timed out: "  # prefix of a step result that ran out of scripted frames


class StepRun:
    """What one step did: the frames it sent (including replies) and how it ended."""

    def __init__(self) -> None:
        self.sent: list[str] = []  # every frame sent, in order
        self.result: str | None = None  # "matched", a failure reason, "timed out: <reason>", None (no expect)
        self.messages = 0  # application messages decoded


def run_step(framing: ConnectionFraming, step: Step, variables: Variables, server: Iterable[str]) -> StepRun:
    """Send the step's frames, then feed server frames until its expectation matched or failed.

    Running out of frames stands for the step's timeout. As the I/O layer: replies (pongs)
    go out at once; a match sends the expectation's `after` frames.
    """
    run = StepRun()
    run.sent.extend(framing.outgoing(step, variables))
    expectation = framing.expectation(step, variables)
    if expectation is None:
        return run
    for text in server:
        replies, messages = framing.receive(text)
        run.sent.extend(replies)
        for message in messages:
            run.messages += 1
            verdict = expectation.check(message)
            if verdict is MATCHED:
                run.sent.extend(expectation.after)
                run.result = "matched"
                return run
            if isinstance(verdict, str):
                run.result = verdict
                return run
    run.result = TIMED_OUT + expectation.timeout_reason()
    return run


def feed(framing: ConnectionFraming, server: Iterable[str]) -> tuple[list[str], int]:
    """Frames read between steps (a hold): the replies sent and the number of messages counted."""
    sent: list[str] = []
    count = 0
    for text in server:
        replies, messages = framing.receive(text)
        sent.extend(replies)
        count += len(messages)
    return sent, count
