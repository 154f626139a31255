"""flapping-pack: WebSocket clients on an unstable network, and a verdict on the server.

Run `locust --headless` (options in locust.conf) or `locust` for the web UI.
"""

from pack import plugin
from scenarios.flapping_user import FlappingUser
from scenarios.phases import FlapPhases
from scenarios.steady_user import SteadyUser

plugin.activate()


class FlappingClient(FlappingUser):
    """Connects, holds ~100 ms, drops, waits ~50 ms and reconnects (see --flap-* options)."""


class SteadyClient(SteadyUser):
    """Holds one connection and echoes every 100 ms while the others flap (only with --steady-users)."""


__all__ = ["FlapPhases", "FlappingClient", "SteadyClient"]
