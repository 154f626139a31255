"""The child services a run may need: the bundled server (no --host) and the fault proxy (--net-*).

Each is its own process on loopback, started before any load and stopped at the end;
`ChildServices` also resolves what the monitor watches, since the bundled server is one
of the choices.
"""

from __future__ import annotations

import logging

from faultproxy.launch import RunningFaultProxy
from monitors.sample import SamplerError
from pack import embedded, network, targets
from pack.options import OptionError
from pack.settings import PackConfig

logger = logging.getLogger("flapping_pack")


class ServiceError(Exception):
    """A service could not start, or the monitor's target cannot be found; the message is one line."""


class ChildServices:
    """The bundled server and the fault proxy of this Locust process, and the URL the users connect to."""

    def __init__(self) -> None:
        self.server: embedded.EmbeddedServer | None = None  # the bundled server, when we started it
        self.proxy: RunningFaultProxy | None = None  # the fault proxy in front of the server, when asked for
        self.default_host: str | None = None  # the URL the pack set up (bundled server or proxy), if it did
        self.targets: targets.MonitorTargets | None = None  # what the monitor watches

    def start(self, config: PackConfig, host: str | None) -> str:
        """Start what `config` asks for in front of `host` (the bundled server when None); the users' URL.

        Raises ServiceError, with everything already started stopped.
        """
        try:
            return self._start(config, host)
        except (embedded.EmbeddedServerError, network.NetworkConditionsError, OptionError, SamplerError) as error:
            self.close()
            raise ServiceError(str(error)) from None

    def _start(self, config: PackConfig, host: str | None) -> str:
        if not host:
            self.server = embedded.start(config)
            host = self.server.url
            logger.info("flapping-pack: started the bundled reference server (%s)", embedded.describe(self.server))
        self.targets = targets.resolve(config, host, self.server)
        if network.wanted(config):
            self.proxy, host = network.start(config, host)
            logger.info("flapping-pack: network conditions through a fault proxy: %s", network.describe(config))
        if self.server is not None or self.proxy is not None:
            self.default_host = host
        for note in self.targets.notes:
            logger.info("flapping-pack: monitor target: %s", note)
        if not self.targets.samplers:
            logger.warning(
                "flapping-pack: no server monitor (give --server-pid, --server-port or --server-metrics-url): "
                "resource checks will be skipped"
            )
        return host

    def close(self) -> None:
        """Stop what was started."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.server is not None:
            self.server.stop()
            self.server = None
