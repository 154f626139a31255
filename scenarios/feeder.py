"""The feeder: the pack publishes to each active user where someone else would (a conversation's `feed:`).

One per Locust process (workers included), for that process's flapping users, on a stable
connection of its own made by the one client factory and lifecycle (`Connection`): it
connects, runs the protocol's opening and the conversation's open steps, then every
`every_ms` runs the feed's steps once per active user with `${target}` and `${seq}`
(`scenarios.feed`). Between rounds it reads what comes (acks, pings). Its rows are
`feed-connect`, `feed-<step>`; each of its connections is a session of the run: a failed one
counts against session_success_pct like a flapping user's. It reconnects after a failure
(at most MAX_FAILURES_IN_A_ROW in a row), stops when no user of the process is active any
more, and is killed at test stop (the connection dropped, never blocking shutdown).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from gevent import GreenletExit

from scenarios.client import WsClient
from scenarios.feed import ROW_PREFIX, FeedSchedule, FeedSpec, FeedTargets
from scenarios.lifecycle import Connection, ConversationScript
from scenarios.tracker import ConnectionTracker
from scenarios.ws_events import fire_ws_request
from scenarios.ws_session import WsFailure

MAX_FAILURES_IN_A_ROW = 5  # failed connections (or rounds) in a row before the feeder gives up
RETRY_S = 0.2  # the pause before reconnecting after a failure
CLOSE_S = 1.0  # a clean close at the end takes at most this
IDLE_PART = "idle"  # the row of a failure while waiting for the next round: feed-idle

logger = logging.getLogger("flapping_pack")


class Feeder:
    """The process's feeder greenlet: runs while some user of the process is active."""

    def __init__(
        self,
        environment: Any,
        client: WsClient,
        script: type[ConversationScript],
        targets: FeedTargets,
        tracker: ConnectionTracker,
        host: str,
        number: int,
    ) -> None:
        feed = client.conversation.feed
        assert feed is not None, "a feeder needs a conversation with feed:"
        self.feed: FeedSpec = feed  # the period and the steps
        self.environment = environment  # where its rows go
        self.client = client  # the run's client factory
        self.script = script  # the run's conversation script (its open steps)
        self.targets = targets  # the process's active users
        self.tracker = tracker  # its sessions count with the users'
        self.host = host  # --host
        self.number = number  # its ${user}: a number no flapping user has
        self.schedule = FeedSchedule(feed.every_s, time.perf_counter)  # when rounds are due
        self._greenlet: gevent.Greenlet | None = None

    @property
    def running(self) -> bool:
        """Whether its greenlet is alive."""
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        """Spawn the greenlet (not in the users' group: Locust neither counts nor waits for it)."""
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """Kill the greenlet: the connection is dropped and its session counted; waits at most CLOSE_S."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None and not greenlet.dead:
            greenlet.kill(block=True, timeout=CLOSE_S)

    def _run(self) -> None:
        failures = 0
        connection: Connection | None = None
        try:
            while self.targets.active and failures < MAX_FAILURES_IN_A_ROW:
                if connection is None:
                    connection = self._connect()
                    if connection is None:
                        failures += 1
                        self.tracker.session_ended(False, 0)
                        gevent.sleep(RETRY_S)
                        continue
                if self._round(connection):
                    failures = 0
                else:
                    failures += 1
                    self.tracker.session_ended(False, 0)
                    connection = None
                    gevent.sleep(RETRY_S)
            if failures >= MAX_FAILURES_IN_A_ROW:
                logger.warning("flapping-pack: the feeder gave up after %d failures in a row", failures)
            if connection is not None:
                with gevent.Timeout(CLOSE_S, False):
                    connection.close_politely()
                connection.abort()
                self.tracker.session_ended(True, 0)
                connection = None
        except GreenletExit:
            pass
        finally:
            if connection is not None:  # killed at test stop: nothing failed
                connection.abort()
                self.tracker.session_ended(True, 0)

    def _connect(self) -> Connection | None:
        session = self.client.session(self.host)
        connection = Connection(self.client, self.script(), session, self._report, user=self.number)
        if connection.connect() is not None or connection.open() is not None:
            connection.abort()
            return None
        return connection

    def _round(self, connection: Connection) -> bool:
        """Wait for the next round (reading what comes), then run the steps once per active user; False: failed."""
        talk = connection.talk
        assert talk is not None
        try:
            talk.part = IDLE_PART
            talk.idle_until(time.perf_counter() + self.schedule.wait_s())
            talk.part = "feed"
            values = talk.variables.values
            for target, seq in self.targets.round():
                values["target"], values["seq"] = str(target), str(seq)
                talk.run(self.feed.steps)
                self.targets.sent(target, seq)
        except WsFailure:  # StepFailed: the row is reported and the connection dropped
            return False
        finally:
            self.schedule.taken()
        return True

    def _report(self, name: str, started: float, length: int, failure: WsFailure | None) -> None:
        fire_ws_request(self.environment, ROW_PREFIX + name, started, length, failure)
