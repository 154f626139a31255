"""The --net-* options as the fault proxy's toxics."""

from __future__ import annotations

from faultproxy.toxics import ToxicSettings
from pack import network
from pack.settings import NetworkSettings, PackConfig


def test_net_options_become_the_proxys_toxics() -> None:
    """Each --net-* value reaches the proxy, in whole milliseconds and KiB/s."""
    network_settings = NetworkSettings(
        latency_ms=50.7, jitter_ms=5, bandwidth_kbps=64, reset_pct=2.5, reset_after_ms=300
    )
    config = PackConfig(network=network_settings)
    assert network.toxic_settings(config) == ToxicSettings(
        latency_ms=50, jitter_ms=5, bandwidth_kbps=64, reset_pct=2.5, reset_after_ms=300
    )
    assert network.wanted(config)
    assert not network.wanted(PackConfig())
    assert network.toxic_settings(PackConfig()) == ToxicSettings()
