"""The pack's locustfile in a process whose pack claims another version: a master must refuse it as a worker."""

import pack.version

pack.version.VERSION = "0.0.0-other"  # read when the worker says hello to its master

from locustfile import FlapPhases, FlappingClient, SteadyClient  # noqa: E402

__all__ = ["FlapPhases", "FlappingClient", "SteadyClient"]
