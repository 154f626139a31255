"""flapping-pack: WebSocket clients on an unstable network, and a verdict on the server.

Run `locust --headless` (options in locust.conf) or `locust` for the web UI.
"""

from flapping_pack import FlapPhases, FlappingUser, SteadyUser


class FlappingClient(FlappingUser):
    """Connects, holds ~100 ms, drops, waits ~50 ms and reconnects (see --flap-* options)."""


class SteadyClient(SteadyUser):
    """Holds one connection and talks every 100 ms while the others flap (only with --steady-users)."""


__all__ = ["FlapPhases", "FlappingClient", "SteadyClient"]
