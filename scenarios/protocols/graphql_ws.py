"""GraphQL over WebSocket, subprotocol `graphql-transport-ws`: the framing of a conversation.

Written from the protocol document (enisdenjo/graphql-ws, PROTOCOL.md). Every frame is one
JSON message `{"type": ..., "id"?: ..., "payload"?: ...}`: the client opens with
`connection_init` and waits for `connection_ack`; `ping` is answered with `pong` by either
side; an operation is `subscribe` (with a unique id), answered by `next` results, then
`complete`, or by `error`; either side may `complete` an operation.

Steps of a conversation with `protocol: graphql-ws`:

- `subscribe: QUERY`, with `variables:` (a mapping) and `expect:` (a JSON subset of a `next`
  payload; none takes any `next`): sends `subscribe` with a fresh id (`s1`, `s2`, ... per
  connection) and waits for the first `next` of that id whose payload contains `expect`. An
  `error` for the id fails the step (`subscription error`), a `complete` before a match too
  (`completed without data`). Once matched the step completes the operation, unless
  `keep_open: true`: then it stays open through the hold and a clean close completes it.
- `send` and `expect`, `expect_text`, `expect_regex` work on the raw JSON messages (pings
  are answered and not shown to them; pongs are).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scenarios.continuity import UserCarry
from scenarios.conversation import (
    MATCHED,
    NOT_IT,
    RAW_ACTIONS,
    SEND,
    Conversation,
    ConversationError,
    Expectation,
    MatchResult,
    Message,
    Step,
    Variables,
    compact_json,
    contains,
    make_step,
)
from scenarios.protocols import (
    NO_FRAMES,
    ConnectionFraming,
    Frame,
    WireProtocol,
    check_payload_setting,
    payload_with_token,
)
from scenarios.protocols.awaiting import Awaiting

SUBPROTOCOL = "graphql-transport-ws"
SUBSCRIBE = "subscribe"
CONNECTION_INIT = "graphql_connection_init"  # the opening step's action (not usable in files)
OPENING_STEP_NAME = "init"  # the Locust row of connection_init .. connection_ack

# Message types of the protocol.
TYPE_CONNECTION_INIT = "connection_init"
TYPE_CONNECTION_ACK = "connection_ack"
TYPE_PING = "ping"
TYPE_PONG = "pong"
TYPE_SUBSCRIBE = "subscribe"
TYPE_NEXT = "next"
TYPE_ERROR = "error"
TYPE_COMPLETE = "complete"
KIND_INVALID = "invalid"  # a frame that is not a JSON object with a string type

# The protocol's close codes (PROTOCOL.md, and the graphql-ws reference implementation's list),
# named in failure messages (`closed by server: 4401 unauthorized`).
CLOSE_NAMES: Mapping[int, str] = {
    4400: "bad request",
    4401: "unauthorized",
    4403: "forbidden",
    4406: "subprotocol not acceptable",
    4408: "connection initialisation timeout",
    4409: "subscriber already exists",
    4429: "too many initialisation requests",
    4499: "terminated",
    4500: "internal server error",
}

SUBSCRIPTION_ERROR = "subscription error"
COMPLETED_WITHOUT_DATA = "completed without data"


def encode(type: str, id: str | None = None, payload: Any = None) -> str:
    """One protocol message as JSON text (id and payload only when given)."""
    message: dict[str, Any] = {"type": type}
    if id is not None:
        message["id"] = id
    if payload is not None:
        message["payload"] = payload
    return compact_json(message)


class GraphQLWSFraming(ConnectionFraming):
    """One graphql-transport-ws connection: its operation ids and which operations are still open."""

    def __init__(self, protocol: GraphQLWSProtocol) -> None:
        self.protocol = protocol  # settings, shared by every connection of the run
        self.acknowledged = False  # connection_ack came
        self.ack_payload: Any = None  # the connection_ack's payload, if any
        self._next_id = 1  # the next operation's number
        self._last_id: str | None = None  # the id of the subscribe just sent (its expectation's)
        self.open_operations: dict[str, None] = {}  # ids subscribed and not completed, in order

    def outgoing(self, step: Step, variables: Variables) -> tuple[Frame, ...]:
        """The frames of `step`: connection_init, a subscribe, or a raw send."""
        action = step.action
        if action == SUBSCRIBE:
            op_id = f"s{self._next_id}"
            self._next_id += 1
            self._last_id = op_id
            self.open_operations[op_id] = None
            payload: dict[str, Any] = {"query": step.resolved(variables)}
            op_variables = step.option("variables", variables)
            if op_variables is not None:
                payload["variables"] = op_variables
            return (encode(TYPE_SUBSCRIBE, op_id, payload),)
        if action == CONNECTION_INIT:
            return (encode(TYPE_CONNECTION_INIT, payload=self.protocol.init_payload(variables)),)
        return super().outgoing(step, variables)

    def expectation(self, step: Step, variables: Variables) -> Expectation | None:
        """What `step` waits for: connection_ack, the operation's first matching `next`, or a raw match."""
        action = step.action
        if action == SUBSCRIBE:
            if self._last_id is None:
                return None
            expected = step.option("expect", variables)
            has_expect = expected is not None
            return self._next_expectation(self._last_id, has_expect, expected, bool(step.options.get("keep_open")))
        if action == CONNECTION_INIT:
            return Awaiting(self._ack_test, "connection_ack timed out")
        return super().expectation(step, variables)

    def _ack_test(self, message: Message) -> MatchResult:
        return message.kind == TYPE_CONNECTION_ACK

    def _next_expectation(self, op_id: str, has_expect: bool, expected: Any, keep_open: bool) -> Expectation:
        def test(message: Message) -> MatchResult:
            if message.key != op_id:
                return NOT_IT
            kind = message.kind
            if kind == TYPE_NEXT:
                data = message.json()
                if has_expect and not (isinstance(data, dict) and contains(expected, data.get("payload"))):
                    awaiting.near_misses += 1
                    return NOT_IT
                if not keep_open and op_id in self.open_operations:
                    # The step is done with the operation: complete it (unless the server already did).
                    del self.open_operations[op_id]
                    awaiting.after = (encode(TYPE_COMPLETE, op_id),)
                return MATCHED
            if kind == TYPE_ERROR:
                return SUBSCRIPTION_ERROR
            if kind == TYPE_COMPLETE:
                return COMPLETED_WITHOUT_DATA
            return NOT_IT

        def reason(expectation: Awaiting) -> str:
            if expectation.near_misses:
                return "subscription timed out: no next matched"
            return "subscription timed out"

        awaiting = Awaiting(test, reason)
        return awaiting

    def receive(self, text: str) -> tuple[tuple[str, ...], tuple[Message, ...]]:
        """Decode one message: a ping is answered with a pong (its payload echoed), the rest are messages."""
        try:
            data = json.loads(text)
        except ValueError:
            return NO_FRAMES, (Message(text, KIND_INVALID),)
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            return NO_FRAMES, (Message(text, KIND_INVALID),)
        kind = data["type"]
        if kind == TYPE_PING:
            return (encode(TYPE_PONG, payload=data.get("payload")),), ()
        op_id = data.get("id")
        if kind in (TYPE_ERROR, TYPE_COMPLETE) and op_id in self.open_operations:
            del self.open_operations[op_id]  # the server ended it: nothing to complete
        elif kind == TYPE_CONNECTION_ACK:
            self.acknowledged = True
            self.ack_payload = data.get("payload")
        message = Message(text, kind, op_id)
        message._json = data  # decoded once here; raw expects reuse it
        return NO_FRAMES, (message,)

    def goodbye(self) -> tuple[str, ...]:
        """`complete` for every operation still open, as a clean client does before closing."""
        frames = tuple(encode(TYPE_COMPLETE, op_id) for op_id in self.open_operations)
        self.open_operations.clear()
        return frames

    def close_names(self) -> Mapping[int, str]:
        """The 44xx close codes by name."""
        return CLOSE_NAMES


class GraphQLWSProtocol(WireProtocol):
    """GraphQL over WebSocket, subprotocol graphql-transport-ws (see the module's docstring)."""

    name = "graphql-ws"
    actions: Mapping[str, frozenset[str]] = {
        **RAW_ACTIONS,
        SUBSCRIBE: frozenset(("variables", "expect", "keep_open")),
    }
    settings_keys = frozenset(("init_payload",))
    auth_places = ("payload",)

    def __init__(self, conversation: Conversation, auth_in_payload: bool = False) -> None:
        super().__init__(conversation, auth_in_payload)
        self.validate(conversation)
        self.init_setting: Mapping[str, Any] | None = conversation.settings.get("init_payload")  # templated
        self._opening = (make_step(CONNECTION_INIT, None, OPENING_STEP_NAME),)  # connection_init .. ack

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The conversation's subprotocols, then graphql-transport-ws (once)."""
        own = self.conversation.subprotocols
        return own if SUBPROTOCOL in own else (*own, SUBPROTOCOL)

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """init_payload is a mapping with known variables."""
        check_payload_setting(settings, "init_payload", "the connection_init payload")

    @classmethod
    def check_step(cls, step: Step) -> None:
        """subscribe takes a query string, variables a mapping, keep_open a boolean; no second connection_init."""
        if step.action == SEND and isinstance(step.value, Mapping) and step.value.get("type") == TYPE_CONNECTION_INIT:
            # The protocol's own `init` step sends it; a second one is closed with 4429.
            raise ConversationError("connection_init is sent by the protocol's init step; remove this step")
        if step.action != SUBSCRIBE:
            return
        if not isinstance(step.value, str) or not step.value.strip():
            raise ConversationError("subscribe takes a GraphQL query (a string)")
        variables = step.options.get("variables")
        if variables is not None and not isinstance(variables, Mapping):
            raise ConversationError("variables: must be a mapping")
        if not isinstance(step.options.get("keep_open", False), bool):
            raise ConversationError("keep_open: must be true or false")

    def opening(self) -> tuple[Step, ...]:
        """One step, the `init` row: connection_init, answered by connection_ack."""
        return self._opening

    def connection(self, carry: UserCarry | None = None) -> GraphQLWSFraming:
        """A new connection's framing (graphql-ws resumes nothing)."""
        return GraphQLWSFraming(self)

    def init_payload(self, variables: Variables) -> dict[str, Any] | None:
        """connection_init's payload: the `init_payload` setting, plus the token when it goes in the payload."""
        return payload_with_token(self.init_setting, variables, self.auth_in_payload)
