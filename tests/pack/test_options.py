"""The pack's options: defaults from one place, typed parsing, one-line errors."""

import argparse

import pytest

from monitors.checks import Thresholds
from pack.options import (
    OPTIONS,
    OptionError,
    config_from_options,
    is_loopback_host,
    validate_ws_host,
)


def _namespace(**values: object) -> argparse.Namespace:
    defaults = {spec.dest: spec.default for spec in OPTIONS}
    defaults.update(values)
    return argparse.Namespace(**defaults)


def test_defaults_build_the_documented_config() -> None:
    """With no options the config holds the documented defaults."""
    config = config_from_options(_namespace())
    assert config.flap.timing.connected_ms == 100
    assert config.flap.timing.disconnected_ms == 50
    assert config.flap.timing.cycles == 20
    assert config.flap.timing.jitter == 0
    assert config.client.conversation.hold  # the built-in echo, one exchange per hold
    assert config.thresholds == Thresholds()


def test_every_option_has_an_env_var_and_help() -> None:
    """Each option can be set by LOCUST_<NAME> and says what it does."""
    for spec in OPTIONS:
        assert spec.env_var == "LOCUST_" + spec.flag[2:].replace("-", "_").upper()
        assert spec.help


def test_web_ui_strings_are_parsed_like_the_command_line() -> None:
    """Values typed into the web UI arrive as strings and are parsed the same way."""
    config = config_from_options(
        _namespace(flap_connected_ms="250", flap_cycles="3", flap_seed="9", flap_echo="false", server_port="8080")
    )
    assert config.flap.timing.connected_ms == 250
    assert config.flap.timing.cycles == 3
    assert config.flap.timing.seed == 9
    assert config.client.conversation.hold == ()
    assert config.monitor.server_port == 8080


@pytest.mark.parametrize(
    ("dest", "value", "message"),
    [
        ("flap_connected_ms", "-5", "--flap-connected-ms: must be >= 0, got -5"),
        ("flap_disconnected_ms", "soon", "--flap-disconnected-ms: not a number: 'soon'"),
        ("flap_jitter", "1", "--flap-jitter: must be in [0, 1), got 1"),
        ("flap_cycles", "2.5", "--flap-cycles: not a whole number: '2.5'"),
        ("server_pid", "0", "--server-pid: must be a process id > 0, got 0"),
        ("server_port", "70000", "--server-port: must be a port between 1 and 65535, got 70000"),
        ("server_metrics_url", "ftp://x/metrics", "--server-metrics-url: not an http:// or https:// URL"),
        ("min_connect_success_pct", "101", "--min-connect-success-pct: must be between 0 and 100, got 101"),
        ("max_memory_growth_mb", "lots", "--max-memory-growth-mb: not a number: 'lots'"),
        ("ws_auth_in", "cookie", "--ws-auth-in: must be one of header, query, payload; got 'cookie'"),
        ("ref_server_fault", "leak-everything", "--ref-server-fault: unknown fault mode 'leak-everything'"),
    ],
)
def test_bad_values_give_one_line_naming_the_option(dest: str, value: str, message: str) -> None:
    """A bad value is refused with one line that names the option."""
    with pytest.raises(OptionError) as raised:
        config_from_options(_namespace(**{dest: value}))
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("http://127.0.0.1:8000", "--host: must start with ws:// or wss://, got 'http://'"),
        ("127.0.0.1:8000", "--host: must start with ws:// or wss://"),
        ("ws://127.0.0.1:99999/", "--host: malformed port"),
        ("ws:///path", "--host: no host name"),
    ],
)
def test_bad_hosts_are_refused(host: str, message: str) -> None:
    """Only ws:// and wss:// URLs with a host are targets."""
    with pytest.raises(OptionError, match="^" + message.replace("/", "/")[:20]):
        validate_ws_host(host)


def test_loopback_hosts_are_recognised() -> None:
    """127.0.0.0/8, ::1 and localhost are this machine; other names are not."""
    assert is_loopback_host("ws://127.0.0.5:1/")
    assert is_loopback_host("ws://[::1]:1/")
    assert is_loopback_host("ws://localhost:1/")
    assert not is_loopback_host("ws://example.invalid:1/")


def test_the_bundled_server_protocols_are_the_ones_it_speaks() -> None:
    """--ref-server-protocol offers exactly the refserver's --protocol choices."""
    from pack.options import REF_SERVER_PROTOCOLS
    from refserver.app_protocol import PROTOCOLS
    from refserver.mqtt_mode import MQTT_PROTOCOL
    from refserver.socketio_mode import SOCKETIO_PROTOCOL

    assert REF_SERVER_PROTOCOLS == (*PROTOCOLS, SOCKETIO_PROTOCOL, MQTT_PROTOCOL)


def test_a_file_naming_users_by_user_alone_is_refused_in_a_distributed_run(tmp_path) -> None:
    """An MQTT client id `flap-${user}` is refused on a master or worker in one line, and accepted alone."""
    conversation = tmp_path / "mqtt.yaml"
    conversation.write_text("protocol: mqtt\nclient_id: flap-${user}\nopen:\n  - subscribe: t/${user}\n")
    config_from_options(_namespace(ws_conversation=str(conversation)))
    for role in ("master", "worker"):
        with pytest.raises(OptionError, match=r"^--ws-conversation: .*mqtt.yaml: client_id: names \$\{user\} without"):
            config_from_options(_namespace(ws_conversation=str(conversation), **{role: True}))
