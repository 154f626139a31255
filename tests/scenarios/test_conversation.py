"""The conversation core, pure: matching, substitution, expectations and conversation files."""

from __future__ import annotations

import re

import pytest

from scenarios.conversation import (
    MATCHED,
    NOT_IT,
    ConversationError,
    Message,
    Variables,
    contains,
    echo_conversation,
    json_expectation,
    make_step,
    parse_header,
    regex_expectation,
    substitute,
    text_expectation,
)
from scenarios.protocols import ConnectionFraming, load_conversation, load_conversation_text

GRAPHQL_YAML = """
subprotocols: [graphql-transport-ws]
open:
  - send: {type: connection_init}
  - expect: {type: connection_ack}
hold:
  - send: {id: "1", type: subscribe, payload: {query: "{ hello }"}}
  - expect: {id: "1", type: next, payload: {data: {hello: world}}}
    name: hello
close:
  - send: {id: "1", type: complete}
"""


class TestContains:
    def test_mappings_match_by_subset_recursively(self) -> None:
        """A mapping matches when each of its keys is there with a matching value, at any depth."""
        actual = {"type": "next", "id": "1", "payload": {"data": {"hello": "world", "n": 2}}}
        assert contains({"payload": {"data": {"hello": "world"}}}, actual)
        assert not contains({"payload": {"data": {"hello": "moon"}}}, actual)
        assert not contains({"missing": 1}, actual)

    def test_lists_match_element_by_element(self) -> None:
        """A list matches a list of the same length whose elements match in order."""
        assert contains([{"ok": True}], [{"ok": True, "echo": "x"}])
        assert not contains([{"ok": True}], [{"ok": True}, 2])

    def test_true_is_not_one(self) -> None:
        """Booleans and numbers are different kinds, as in JSON."""
        assert not contains(True, 1)
        assert not contains(1, True)
        assert contains(1, 1.0)


class TestSubstitution:
    def test_variables_are_replaced_in_every_string(self) -> None:
        """${user}, ${cycle} and ${token} are replaced in keys, values and list items."""
        value = {"${user}": ["c${cycle}", {"t": "Bearer ${token}"}], "n": 3}
        assert substitute(value, Variables(user=4, cycle=7, token="T")) == {"4": ["c7", {"t": "Bearer T"}], "n": 3}

    def test_the_worker_index_makes_user_numbers_unique_across_workers(self) -> None:
        """${worker} is the Locust worker's index (0 without workers), in plain strings and among captures."""
        assert substitute("flap-${worker}-${user}", Variables(user=2, worker=1)) == "flap-1-2"
        with_capture = Variables(user=2, worker=1, values={"sid": "x"})
        assert substitute("${worker}/${user}/${sid}", with_capture) == "1/2/x"

    def test_an_unknown_variable_is_bad_configuration(self) -> None:
        """A typo in a variable name is refused when the step is made, not sent as is."""
        with pytest.raises(ConversationError, match=r"unknown variable \$\{usr\}"):
            make_step("send", "hi ${usr}", "s")

    def test_the_token_never_shows_in_repr(self) -> None:
        """Variables hold the secret token, which their repr leaves out."""
        assert "s3cret" not in repr(Variables(token="s3cret"))


class TestExpectations:
    def test_json_skips_what_does_not_match(self) -> None:
        """A JSON expectation skips other messages and non-JSON text, then matches."""
        expectation = json_expectation({"type": "pong"})
        assert expectation.check(Message("not json")) is NOT_IT
        assert expectation.check(Message('{"type": "push"}')) is NOT_IT
        assert expectation.check(Message('{"type": "pong", "t": 1}')) is MATCHED
        assert expectation.skipped == 2

    def test_timeout_reasons_say_what_came_never_the_payload(self) -> None:
        """The timeout's reason tells nothing came, only non-JSON came, or nothing matched."""
        nothing = json_expectation({"a": 1})
        assert nothing.timeout_reason() == "expect timed out"
        garbled = json_expectation({"a": 1})
        garbled.check(Message("<html>secret</html>"))
        assert garbled.timeout_reason() == "expect timed out: not JSON"
        other = json_expectation({"a": 1})
        other.check(Message('{"a": 2}'))
        assert other.timeout_reason() == "expect timed out: no message matched"

    def test_text_and_regex(self) -> None:
        """expect_text needs the exact text; expect_regex a match anywhere in it."""
        assert text_expectation("hi").check(Message("hi")) is MATCHED
        assert text_expectation("hi").check(Message("hi!")) is NOT_IT
        assert regex_expectation(re.compile(r"id=\d+")).check(Message("welcome id=42")) is MATCHED


class TestRegexVariables:
    def test_user_and_cycle_match_as_literal_text(self) -> None:
        """`${user}` and `${cycle}` in expect_regex stand for this connection's values, nothing more."""
        framing = ConnectionFraming()
        step = make_step("expect_regex", r"flap[.]${user} ${cycle}$", "r")
        expectation = framing.expectation(step, Variables(user=12, cycle=3))
        assert expectation is not None
        assert expectation.check(Message("flap.12 3")) is MATCHED
        assert expectation.check(Message("flap.1 3")) is NOT_IT  # another user's message
        assert expectation.check(Message("flap.12 33")) is NOT_IT

    def test_values_are_escaped(self) -> None:
        """A value is literal text: its characters are never read as regex syntax."""
        step = make_step("expect_regex", r"^id ${user}$", "r")
        assert step.regex(Variables(user=-1)).pattern == r"^id \-1$"
        assert step.regex(Variables(user=7)).search("id 7") is not None

    def test_a_pattern_without_variables_is_compiled_once(self) -> None:
        """Without variables every connection shares the step's one compiled pattern."""
        step = make_step("expect_regex", r"id=\d+", "r")
        assert step.regex(Variables(user=1)) is step.pattern is step.regex(Variables(user=2))

    def test_the_token_is_refused(self) -> None:
        """A secret never goes into a pattern."""
        with pytest.raises(ConversationError, match=r"expect_regex can hold \$\{user\}, \$\{cycle\} and captures, not"):
            make_step("expect_regex", "hello ${token}", "r")

    def test_a_bad_pattern_around_variables_is_refused_when_loaded(self) -> None:
        """The pattern is compiled when the step is made, variables and all."""
        with pytest.raises(ConversationError, match="expect_regex does not compile"):
            make_step("expect_regex", "(${user}", "r")


class TestRawFraming:
    def test_send_writes_strings_as_is_and_the_rest_as_json(self) -> None:
        """A string goes as text; a mapping or list as compact JSON, after substitution."""
        framing = ConnectionFraming()
        variables = Variables(user=1, cycle=2)
        assert framing.outgoing(make_step("send", "hi ${user}", "s"), variables) == ("hi 1",)
        assert framing.outgoing(make_step("send", {"c": "${cycle}"}, "s"), variables) == ('{"c":"2"}',)

    def test_echo_is_a_send_and_an_expect_of_the_same_text(self) -> None:
        """The default conversation holds one exchange, reported as the `echo` row."""
        conversation = echo_conversation()
        assert [(s.action, s.name) for s in conversation.hold] == [("send", "hold-1"), ("expect_text", "echo")]
        assert conversation.open == () and conversation.close == ()


class TestConversationFiles:
    def test_the_issue_example_loads(self) -> None:
        """The GraphQL example of the issue: subprotocols, three parts, default and given names."""
        conversation = load_conversation_text(GRAPHQL_YAML, "g.yaml")
        assert conversation.subprotocols == ("graphql-transport-ws",)
        assert [s.name for s in conversation.open] == ["open-1", "open-2"]
        assert [s.name for s in conversation.hold] == ["hold-1", "hello"]
        assert conversation.close[0].action == "send"

    def test_json_is_valid_yaml(self, tmp_path) -> None:
        """A conversation file in JSON loads the same."""
        path = tmp_path / "c.json"
        path.write_text('{"open": [{"send": "hi"}, {"expect_text": "hi", "timeout_ms": 500}]}')
        conversation = load_conversation(str(path))
        assert conversation.open[1].timeout_ms == 500.0

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("open: [{send: a}\n", "c.yaml: YAML syntax error at line 2"),
            ("hello: 1", "c.yaml: unknown key 'hello'"),
            ("hold: [{name: x}]", "c.yaml: hold step 1: no action"),
            ("hold: [{send: a, expect_text: a}]", "c.yaml: hold step 1: two actions (send, expect_text)"),
            ("close: [{expect_regex: '('}]", "c.yaml: close step 1: expect_regex does not compile"),
            ("open: [{send: a}, {expect: a}]", "c.yaml: open step 2: expect takes a mapping or a list"),
            ("open: [{send: a, timeout_ms: -1}]", "c.yaml: open step 1: timeout_ms must be > 0"),
            ("open: [{send: a, ack: 1}]", "c.yaml: open step 1: unknown key 'ack' for send"),
            ("protocol: amqp", "c.yaml: unknown protocol 'amqp'"),
            ("headers: {'Bad Name': x}", "c.yaml: headers: a header must look like 'Name: value'"),
        ],
    )
    def test_a_bad_file_is_one_line_naming_file_part_and_step(self, text: str, message: str) -> None:
        """Each mistake is refused with one line that starts with the file, the part and the step."""
        with pytest.raises(ConversationError) as error:
            load_conversation_text(text, "c.yaml")
        assert str(error.value).startswith(message), str(error.value)
        assert "\n" not in str(error.value)

    def test_a_missing_file_is_named(self) -> None:
        """A path that cannot be read is one line naming it."""
        with pytest.raises(ConversationError, match=r"^/no/such\.yaml: cannot read"):
            load_conversation("/no/such.yaml")


def test_a_bad_header_names_the_header_never_the_value() -> None:
    """Header values are secrets: errors name the header only."""
    with pytest.raises(ValueError) as error:
        parse_header("X-Api-Key: abc\r\ndef")
    assert "abc" not in str(error.value) and "X-Api-Key" in str(error.value)
    with pytest.raises(ValueError, match="set by the handshake"):
        parse_header("Sec-WebSocket-Key: x")


def test_a_token_holding_a_variable_name_is_sent_as_it_is() -> None:
    """Substitution does not run twice: a token that reads "${user}" is not replaced by the user number."""
    assert substitute("Bearer ${token}", Variables(user=3, token="a${user}b")) == "Bearer a${user}b"


def test_a_users_number_without_the_worker_is_found_in_keys_values_and_lists() -> None:
    """`${user}` (or a feed's `${target}`) anywhere without `${worker}` would be one name for two workers' users."""
    from scenarios.conversation import number_without_worker, variable_names

    step = {"publish": "t/${target}", "payload": [{"${ref}": "${seq}"}]}
    assert variable_names(step) == ["target", "ref", "seq"]
    assert number_without_worker(step, "target") and not number_without_worker(step)
    assert not number_without_worker({"send": ["${worker}", {"to": "${user}"}]})
    assert number_without_worker("flap-${user}") and not number_without_worker(None)
