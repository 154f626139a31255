"""flapping-pack: WebSocket clients on an unstable network, and a verdict on the server.

Run `flap --headless` (or `./flap.sh`; options in locust.conf) or `flap` for the web UI. This file is
the bundled locustfile of the installed pack (`flap` runs it when no other is named); the repository's
`locustfile.py` is a link to it. It imports only the installed package, so a worker started with
`-f -` can run it as the master sends it.
"""

from flapping_pack import FlapPhases, FlappingUser, SteadyUser


class FlappingClient(FlappingUser):
    """Connects, holds ~100 ms, drops, waits ~50 ms and reconnects (see --flap-* options)."""


class SteadyClient(SteadyUser):
    """Holds one connection and talks every 100 ms while the others flap (only with --steady-users)."""


__all__ = ["FlapPhases", "FlappingClient", "SteadyClient"]
