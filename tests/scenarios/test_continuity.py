"""Counting a user's stream across reconnects: gaps, duplicates, chains, the end of a run (scripted)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from scenarios.continuity import MAX_GAPS, ContinuityCounts, UserCarry, UserStream
from scenarios.conversation import ConversationError


def feed(stream: UserStream, numbers: Iterable[int]) -> None:
    for seq in numbers:
        stream.received(seq)


def test_a_gap_within_a_session_is_lost() -> None:
    """Numbers missing between two received ones in one session are lost, and the session counted once."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 2, 5, 6, 9])
    assert counts.messages_lost == 4  # 3, 4, 7, 8
    assert counts.sessions_with_loss == 1
    assert counts.stream_messages == 5
    assert counts.messages_duplicated == 0


def test_numbers_before_the_first_received_are_not_lost() -> None:
    """A chain counts from its first received number, whatever it is."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1000, 1001])
    assert counts.messages_lost == 0


def test_a_resumed_session_continues_the_chain() -> None:
    """What a resumed session misses after the last number of the session before is lost."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 2, 3])
    # the connection drops; the server keeps sending 4..9; the client resumes
    stream.session_started(resume_asked=True)
    stream.server_answered(recovered=False)
    feed(stream, [8, 9])
    assert counts.messages_lost == 4  # 4, 5, 6, 7
    assert counts.resumes_asked == 1
    assert counts.resumes_answered == 1
    assert counts.sessions_resumed == 0
    assert counts.sessions_with_loss == 1
    assert counts.chains == 1


def test_a_recovered_session_that_replays_everything_loses_nothing() -> None:
    """A server that recovered and replayed the missed numbers: nothing lost, the recovery counted."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 2, 3])
    stream.session_started(resume_asked=True)
    stream.server_answered(recovered=True)
    feed(stream, [4, 5, 6, 7, 8])
    assert counts.messages_lost == 0
    assert counts.sessions_resumed == 1
    assert counts.sessions_with_loss == 0


def test_a_session_that_did_not_resume_starts_a_new_chain() -> None:
    """What was sent between two chains is nobody's loss."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 2, 3])
    stream.session_started(resume_asked=False)  # e.g. after a clean disconnect
    feed(stream, [40, 41])
    assert counts.messages_lost == 0
    assert counts.chains == 2
    assert counts.resumes_asked == 0


def test_an_answer_to_a_session_that_did_not_ask_is_not_counted() -> None:
    """The server's recovery flag counts only for sessions that tried to resume."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    stream.server_answered(recovered=False)
    assert counts.resumes_answered == 0


def test_a_number_received_again_is_a_duplicate() -> None:
    """Numbers at or below the highest that were never missing are duplicates (QoS 1 redelivery, a replay)."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 2, 3])
    stream.session_started(resume_asked=True)
    feed(stream, [2, 3, 4])
    assert counts.messages_duplicated == 2
    assert counts.messages_lost == 0


def test_a_late_arrival_is_taken_back_from_the_lost() -> None:
    """A missing number that arrives out of order is not lost, and not a duplicate."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 5, 3, 2, 4, 3])
    assert counts.messages_lost == 0
    assert counts.messages_duplicated == 1  # the second 3


def test_a_late_arrival_fills_the_middle_of_a_range() -> None:
    """Splitting a missing range keeps both of its ends missing."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 10, 5])
    assert counts.messages_lost == 7
    feed(stream, [2, 9, 6])
    assert counts.messages_lost == 4  # 3, 4, 7, 8
    feed(stream, [5])
    assert counts.messages_duplicated == 1


def test_very_old_gaps_are_forgotten_and_their_late_arrivals_count_as_duplicates() -> None:
    """At most MAX_GAPS missing ranges are remembered per user: memory stays bounded."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, range(0, 2 * (MAX_GAPS + 1) + 1, 2))  # every odd number missing: MAX_GAPS + 1 ranges
    assert counts.messages_lost == MAX_GAPS + 1
    stream.received(1)  # the oldest range was forgotten
    assert counts.messages_duplicated == 1
    stream.received(3)
    assert counts.messages_lost == MAX_GAPS


def test_messages_in_flight_at_the_end_of_the_last_session_are_not_counted() -> None:
    """A resumed session that ends before anything arrives finds no loss: a loss needs a later number."""
    counts = ContinuityCounts()
    stream = UserStream(counts)
    stream.session_started(resume_asked=False)
    feed(stream, [1, 2, 3])
    stream.session_started(resume_asked=True)  # the run ends now
    assert counts.messages_lost == 0
    assert counts.sessions_with_loss == 0


def test_counts_add_up_across_users_and_survive_a_dict() -> None:
    """Two users' (or workers') counts add field by field, and a worker's report carries them as a dict."""
    a = ContinuityCounts(stream_messages=10, messages_lost=2, resumes_asked=3, sessions_resumed=1)
    b = ContinuityCounts(stream_messages=5, messages_duplicated=1, resumes_asked=2, sessions_with_loss=1)
    total = a.merged(b)
    assert total == ContinuityCounts(
        stream_messages=15, messages_lost=2, messages_duplicated=1, resumes_asked=5, sessions_resumed=1,
        sessions_with_loss=1,
    )  # fmt: skip
    assert ContinuityCounts.from_dict(total.to_dict()) == total
    assert ContinuityCounts.from_dict({"messages_lost": 3, "unknown": 1}).messages_lost == 3


def test_a_carry_resumes_after_the_first_session_unless_the_last_ended_on_purpose() -> None:
    """With resume on: the first session starts a chain, the next resume, one after a clean goodbye starts afresh."""
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=True)
    assert carry.session_started() is False
    carry.protocol_state["pid"] = "p1"
    carry.session_ended(on_purpose=False)
    assert carry.session_started() is True
    assert carry.protocol_state == {"pid": "p1"}
    carry.session_ended(on_purpose=True)
    assert carry.session_started() is False
    assert carry.protocol_state == {}  # a new chain forgets the resume state
    assert (counts.chains, counts.resumes_asked) == (2, 1)


def test_a_carry_without_resume_starts_a_chain_every_session() -> None:
    """Without resume, every session is new; the last number of the chain is known."""
    counts = ContinuityCounts()
    carry = UserCarry(counts, resume=False)
    carry.session_started()
    assert carry.stream is not None
    carry.stream.received(7)
    assert carry.last == 7
    carry.session_started()
    assert carry.last is None
    assert counts.chains == 2


def test_a_carry_without_a_stream_keeps_the_resume_state_only() -> None:
    """No stream defined: nothing is counted, the protocol's resume state is still carried."""
    carry = UserCarry(None, resume=True)
    carry.session_started()
    carry.protocol_state["pid"] = "p"
    carry.server_answered(True)
    assert carry.session_started() is True
    assert carry.last is None


def test_persisted_captures_are_known_to_every_step_and_start_empty() -> None:
    """`persist: true` on a capture: earlier steps may use it (a resume message), "" until first captured."""
    from scenarios.protocols import load_conversation_text

    text = (
        "open:\n"
        '  - send: {type: resume, session: "${session}"}\n'
        "  - expect: {type: welcome}\n"
        "    capture: {session: {path: data.session, persist: true}, greeting: data.text}\n"
    )
    conversation = load_conversation_text(text, "r.yaml")
    assert conversation.persisted == ("session",)
    assert conversation.open[1].captures[0].persist is True
    assert conversation.open[1].captures[1].persist is False
    carry = UserCarry(None, persisted=conversation.persisted)
    assert carry.persisted == {"session": ""}
    with pytest.raises(ConversationError, match="capture session: persist: must be true or false"):
        load_conversation_text(text.replace("persist: true", "persist: 1").replace("${session}", "x"), "r.yaml")
    with pytest.raises(ConversationError, match="capture session: unknown key 'keep'"):
        load_conversation_text(text.replace("persist: true", "keep: true").replace("${session}", "x"), "r.yaml")


def test_a_users_connections_start_with_its_persisted_values() -> None:
    """The client factory seeds each connection's values from the user's carry; the first one gets ""."""
    from scenarios.client import WsClient
    from scenarios.protocols import load_conversation_text
    from scenarios.settings import ClientSettings

    text = (
        "open:\n"
        '  - send: {type: resume, session: "${session}"}\n'
        "  - expect: {type: welcome}\n"
        "    capture: {session: {path: data.session, persist: true}}\n"
    )
    client = WsClient(ClientSettings(conversation=load_conversation_text(text, "r.yaml")))
    carry = client.carry(ContinuityCounts())
    assert carry is not None
    step = client.conversation.open[0]

    def first_send(talk_values: dict[str, str]) -> object:
        from scenarios.conversation import Variables

        return step.resolved(Variables(values=talk_values, carry=carry))

    session = client.session("ws://127.0.0.1:9/")
    talk = client.talk(session, lambda *args: None, 1, 0, carry)
    assert first_send(talk.variables.values) == {"type": "resume", "session": ""}
    carry.persisted["session"] = "s-42"  # what Talk keeps when the capture matches
    talk = client.talk(session, lambda *args: None, 1, 1, carry)
    assert first_send(talk.variables.values) == {"type": "resume", "session": "s-42"}
