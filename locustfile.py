"""flapping-pack: WebSocket clients on an unstable network, and a verdict on the server.

Run `locust --headless` (options in locust.conf) or `locust` for the web UI.
"""

from pack import plugin
from scenarios.flapping_user import FlappingUser
from scenarios.phases import FlapPhases

plugin.activate()


class FlappingClient(FlappingUser):
    """Connects, holds ~100 ms, drops, waits ~50 ms and reconnects (see --flap-* options)."""


__all__ = ["FlapPhases", "FlappingClient"]
