"""flapping-pack's public API, for your own locustfile.

Importing this module turns the pack on (its options, the bundled server, the monitor, the
verdict and the web UI tab), as the bundled `locustfile.py` does. Subclass `FlappingUser`
(and optionally `SteadyUser`); to write the conversation in Python, subclass
`ConversationScript` (`on_open`, `on_hold`, `on_close`, each given the connection's `Talk`)
and name it as the user class's `script`; export `FlapPhases` so the run has its phases.
See the README, "A conversation in Python", and `examples/custom_user.py`.
"""

from pack import plugin
from pack.version import VERSION
from scenarios.client import WsClient
from scenarios.conversation import Conversation, ConversationError, Message, Step, Variables, make_step
from scenarios.exchange import StepFailed, Talk
from scenarios.flapping_user import FlappingUser
from scenarios.lifecycle import Connection, ConversationScript
from scenarios.phases import FlapPhases
from scenarios.protocols import load_conversation
from scenarios.settings import ClientSettings
from scenarios.steady_user import SteadyUser
from scenarios.ws_session import WsFailure

plugin.activate()

__version__ = VERSION  # the installed pack's version (pyproject.toml reads it from pack/version.py)

__all__ = [
    "ClientSettings",
    "Connection",
    "Conversation",
    "ConversationScript",
    "ConversationError",
    "FlapPhases",
    "FlappingUser",
    "Message",
    "SteadyUser",
    "Step",
    "StepFailed",
    "Talk",
    "Variables",
    "WsClient",
    "WsFailure",
    "load_conversation",
    "make_step",
]
