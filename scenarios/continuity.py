"""Continuity: whether each user got every message of its stream across its reconnects. Pure bookkeeping.

A conversation's `stream:` names the pushes that form a user's ordered stream and where
their sequence number is. Per user, `UserStream` is fed the user's session starts (did the
session try to resume the one before? did the server say it recovered?) and the sequence
numbers it received, and counts:

- **lost**: numbers missing between the first and the last received within a *chain*, the
  sessions that resumed one another. A session that did not try to resume starts a new
  chain (a clean Socket.IO disconnect ends its session on purpose; an MQTT clean start is
  new), so what was sent between two chains is nobody's loss. A loss is only seen once a
  later number arrives: messages in flight at the very end of a user's last session are
  not counted. A missing number that arrives late (out of order) is taken back.
- **duplicated**: a number received again within a chain.

`UserCarry` is what one user carries from one session to the next: its stream, the
protocol's resume state (Socket.IO's session id and offset) and whether the next session
asks to resume. `ContinuityCounts` add up over users, processes and workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MAX_GAPS = 256  # missing ranges remembered per user for late arrivals; older ones stay lost


@dataclass
class ContinuityCounts:
    """The stream counts of one user, one process or the whole run (they add up)."""

    stream_messages: int = 0  # stream messages received, duplicates included
    messages_lost: int = 0  # sequence numbers missing within chains
    messages_duplicated: int = 0  # sequence numbers received again within a chain
    seq_unreadable: int = 0  # stream messages whose sequence number was missing or not a number
    chains: int = 0  # sessions that started a new chain (a user's first, or one that did not resume)
    resumes_asked: int = 0  # sessions that tried to resume the session before (reconnects)
    resumes_answered: int = 0  # ... whose server said whether it recovered (Socket.IO, MQTT)
    sessions_resumed: int = 0  # ... where the server said it recovered the session
    sessions_with_loss: int = 0  # sessions in which a loss was found

    def merged(self, other: ContinuityCounts) -> ContinuityCounts:
        """The sum of two snapshots (two users, two workers)."""
        return ContinuityCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)}
        )

    def to_dict(self) -> dict[str, int]:
        """A JSON- and msgpack-friendly form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContinuityCounts:
        """The inverse of `to_dict` (unknown keys ignored, missing ones 0)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: int(value) for key, value in data.items() if key in names})


class UserStream:
    """One user's stream: its current chain's highest number and missing ranges, counted into `counts`."""

    __slots__ = ("counts", "highest", "_gaps", "_session_lost", "_resuming")

    def __init__(self, counts: ContinuityCounts) -> None:
        self.counts = counts  # where this user's counts are added (the process's totals)
        self.highest: int | None = None  # the highest number received in the current chain
        self._gaps: list[list[int]] = []  # missing [first, last] ranges of the chain, oldest first
        self._session_lost = False  # a loss was found in the current session
        self._resuming = False  # the current session tried to resume

    def session_started(self, resume_asked: bool) -> None:
        """A session began; one that did not try to resume starts a new chain."""
        self._session_lost = False
        self._resuming = resume_asked
        if resume_asked:
            self.counts.resumes_asked += 1
            return
        self.counts.chains += 1
        self.highest = None
        self._gaps.clear()

    def server_answered(self, recovered: bool) -> None:
        """The server said whether it recovered the session this one tried to resume."""
        if not self._resuming:
            return
        self.counts.resumes_answered += 1
        if recovered:
            self.counts.sessions_resumed += 1

    def unreadable(self) -> None:
        """A stream message without a readable sequence number."""
        self.counts.seq_unreadable += 1

    def received(self, seq: int) -> None:
        """A stream message with sequence number `seq`."""
        counts = self.counts
        counts.stream_messages += 1
        highest = self.highest
        if highest is None or seq == highest + 1:
            self.highest = seq
            return
        if seq > highest:
            counts.messages_lost += seq - highest - 1
            self._gaps.append([highest + 1, seq - 1])
            if len(self._gaps) > MAX_GAPS:
                del self._gaps[0]
            self.highest = seq
            if not self._session_lost:
                self._session_lost = True
                counts.sessions_with_loss += 1
            return
        if self._fill(seq):
            counts.messages_lost -= 1  # it came late, not never
        else:
            counts.messages_duplicated += 1

    def _fill(self, seq: int) -> bool:
        """Take `seq` out of the missing ranges; whether it was missing."""
        gaps = self._gaps
        for index in range(len(gaps) - 1, -1, -1):
            first, last = gaps[index]
            if first <= seq <= last:
                if first == last:
                    del gaps[index]
                elif seq == first:
                    gaps[index][0] = seq + 1
                elif seq == last:
                    gaps[index][1] = seq - 1
                else:
                    gaps[index : index + 1] = [[first, seq - 1], [seq + 1, last]]
                return True
        return False


class UserCarry:
    """What one user carries from one session to the next: its stream and the protocol's resume state.

    With `resume` on, every session after the user's first tries to resume the one before,
    unless that one ended on purpose (a clean Socket.IO disconnect): then it starts afresh.
    """

    __slots__ = ("stream", "resume", "protocol_state", "persisted", "sessions", "resuming", "_ended_on_purpose")

    def __init__(
        self, counts: ContinuityCounts | None = None, resume: bool = False, persisted: tuple[str, ...] = ()
    ) -> None:
        self.stream = UserStream(counts) if counts is not None else None  # None: no stream defined
        self.resume = resume  # the conversation asks reconnects to resume
        self.protocol_state: dict[str, Any] = {}  # the protocol's resume state (Socket.IO: pid, offset)
        self.persisted: dict[str, str] = dict.fromkeys(persisted, "")  # captures kept across reconnects ("": none yet)
        self.sessions = 0  # sessions started
        self.resuming = False  # the current session tries to resume the one before
        self._ended_on_purpose = False  # the last session ended on purpose (no resume after it)

    def session_started(self) -> bool:
        """A session begins (its handshake completed); returns whether it tries to resume."""
        resuming = self.resume and self.sessions > 0 and not self._ended_on_purpose
        self.sessions += 1
        self._ended_on_purpose = False
        self.resuming = resuming
        if not resuming:
            self.protocol_state.clear()
        if self.stream is not None:
            self.stream.session_started(resuming)
        return resuming

    def server_answered(self, recovered: bool) -> None:
        """The server said whether it recovered the session (Socket.IO's CONNECT pid, MQTT's session present)."""
        if self.stream is not None:
            self.stream.server_answered(recovered)

    def session_ended(self, on_purpose: bool) -> None:
        """The session ended; `on_purpose` when the client ended it so that it will not be resumed."""
        self._ended_on_purpose = on_purpose

    @property
    def last(self) -> int | None:
        """The stream's last (highest) number in the current chain, or None."""
        return self.stream.highest if self.stream is not None else None
