"""What the run's clients are told: one pure settings type per concern, defaults in one place.

`pack.options` builds them once from the command line (or the web UI) and `PackConfig`
holds them as they are; the clients read them without any translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scenarios.conversation import Conversation, echo_conversation
from scenarios.disconnect import DisconnectMix
from scenarios.schedule import FlapTiming

AUTH_PLACES = ("header", "query", "payload")  # where the token goes: Authorization header, ?token=, protocol payload
ORIGIN_FROM_HOST = None  # ClientSettings.origin's default: derive the Origin from the URL, as browsers do
MAX_SOURCE_ADDRESSES = 254  # 127.0.0.1 .. 127.0.0.254


@dataclass(frozen=True)
class ClientSettings:
    """How every connection of a run is made and what it says; defaults are the options' defaults."""

    timeout_s: float = 5.0  # bound on every socket operation, and an expect's default timeout
    auth_token: str = field(default="", repr=False)  # secret
    auth_in: str = "header"  # one of AUTH_PLACES
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # --ws-header (values secret)
    subprotocols: tuple[str, ...] = ()  # --ws-subprotocol, offered besides the conversation's
    origin: str | None = ORIGIN_FROM_HOST  # --ws-origin; "" sends none
    ca_file: str = ""  # --ws-ca-file
    conversation: Conversation = field(default_factory=echo_conversation)  # what each connection says


@dataclass(frozen=True)
class FlapSettings:
    """What every flapping user of a run does with its connection."""

    timing: FlapTiming = field(default_factory=FlapTiming)  # the schedule
    disconnect: DisconnectMix = field(default_factory=DisconnectMix)  # the styles each cycle's disconnect is drawn from
    source_addresses: int = 1  # connect from 127.0.0.1 .. 127.0.0.N in turn (server on loopback); 1: kernel picks


@dataclass(frozen=True)
class SteadySettings:
    """The steady users: long-lived connections beside the flapping ones."""

    users: int = 0  # how many (0: none)
    interval_ms: float = 100.0  # time between a steady user's hold steps

    @property
    def interval_s(self) -> float:
        """The interval in seconds."""
        return self.interval_ms / 1000.0
