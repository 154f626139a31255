"""The pack's command-line options: one table, parsed into one validated `PackConfig`.

Every option has an env var (LOCUST_ + upper-case name), works from locust.conf and
shows in the web UI's custom parameters. The same parse functions run at the command
line (argparse `type=`) and on values typed into the web UI, so a bad value gets the
same one-line message either way.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from childproc.numbers import NumberRange, number_in, parse_number
from monitors.checks import OFF, ThresholdInfo, Thresholds, threshold_info
from pack.settings import MonitorSettings, NetworkSettings, OutputSettings, PackConfig, RefServerSettings
from scenarios.conversation import Conversation, ConversationError, echo_conversation, parse_header
from scenarios.disconnect import DisconnectMix
from scenarios.phase_plan import PhaseSettings
from scenarios.protocols import PROTOCOL_NAMES, check_across_workers, load_conversation, load_conversation_text
from scenarios.schedule import JITTER_DISTRIBUTIONS, FlapTiming
from scenarios.settings import AUTH_PLACES, MAX_SOURCE_ADDRESSES, ClientSettings, FlapSettings, SteadySettings

REF_SERVER_PROTOCOLS = ("echo", "app", "socketio", "mqtt")  # what the bundled server speaks (refserver --protocol)
FAULT_MODES = (
    "none",
    "leak-memory",
    "leak-agents",
    "leak-fds",
    "reject-503",
    "slow-handshake",
    "block-loop",
    "lose-on-resume",
    "ignore-pingreq",
)
ORIGIN_AUTO = "auto"  # --ws-origin's default: derived from the URL
MAX_ROUNDS = 10  # --flap-rounds at most


class OptionError(ValueError):
    """A bad option value; the message is the one line the user sees."""


# --- parse functions: str (or an already typed value) in, typed value out --------------

non_negative_float = number_in(float, NumberRange(low=0))  # durations, sizes, limits
positive_float = number_in(float, NumberRange(low=0, low_open=True))  # intervals, timeouts
non_negative_int = number_in(int, NumberRange(low=0))  # counts
round_count = number_in(int, NumberRange(low=1, high=MAX_ROUNDS))  # rounds of flapping and settle
source_address_count = number_in(int, NumberRange(low=1, high=MAX_SOURCE_ADDRESSES))  # loopback source addresses
percentage = number_in(float, NumberRange(low=0, high=100))
jitter_fraction = number_in(float, NumberRange(low=0, high=1, high_open=True))
_pid = number_in(int, NumberRange(low=0, low_open=True), what="a process id ")
_port = number_in(int, NumberRange(low=1, high=65535), what="a port ")


def optional_int(value: Any) -> int | None:
    """A whole number, or empty for "not set"."""
    if value is None or str(value).strip() == "":
        return None
    return parse_number(value, int)


def optional_pid(value: Any) -> int | None:
    """A process id (> 0), or empty."""
    return None if optional_int(value) is None else _pid(value)


def optional_port(value: Any) -> int | None:
    """A TCP port (1-65535), or empty."""
    return None if optional_int(value) is None else _port(value)


def text(value: Any) -> str:
    """Free text (empty means not set)."""
    return "" if value is None else str(value).strip()


def http_url(value: Any) -> str:
    """An http:// or https:// URL with a host, or empty."""
    url = text(value)
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        raise ValueError("not an http:// or https:// URL")
    return url


def choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    """One of `choices`."""

    def parse(value: Any) -> str:
        word = text(value)
        if word not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {word!r}")
        return word

    return parse


def fault_modes(value: Any) -> tuple[str, ...]:
    """A comma-separated list of the bundled server's fault modes ("none" for none)."""
    if isinstance(value, (tuple, list)):  # already parsed
        value = ",".join(value)
    words = tuple(w.strip() for w in text(value).split(",") if w.strip()) or ("none",)
    unknown = [w for w in words if w not in FAULT_MODES]
    if unknown:
        raise ValueError(f"unknown fault mode {unknown[0]!r}; choose from {', '.join(FAULT_MODES)}")
    return tuple(w for w in words if w != "none")


def disconnect_mix(value: Any) -> str:
    """Weighted disconnect styles, ``style[:weight],...``; kept as its canonical text.

    Text, not a `DisconnectMix`, so Locust's web UI can show and retype it like any string.
    """
    return str(value if isinstance(value, DisconnectMix) else DisconnectMix.parse(text(value)))


def header_lines(value: Any) -> tuple[tuple[str, str], ...]:
    """`Name: value` headers (the option repeats); ValueError names a bad header, never its value."""
    if value is None or value == "":
        return ()
    if isinstance(value, tuple) and all(isinstance(v, tuple) for v in value):
        return value  # already parsed
    lines = [value] if isinstance(value, str) else list(value)
    return tuple(parse_header(str(line)) for line in lines if str(line).strip())


def name_list(value: Any) -> tuple[str, ...]:
    """A comma-separated list of names (subprotocols)."""
    if isinstance(value, (tuple, list)):
        value = ",".join(value)
    names = tuple(name.strip() for name in text(value).split(",") if name.strip())
    for name in names:
        if any(c.isspace() or c in '",;' for c in name):
            raise ValueError(f"not a subprotocol name: {name!r}")
    return names


def readable_file(value: Any) -> str:
    """A path to a readable file, or empty."""
    path = text(value)
    if path and not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    if path and not os.access(path, os.R_OK):
        raise ValueError(f"cannot read {path}")
    return path


def ca_file(value: Any) -> str:
    """A PEM file of CA certificates to trust, or empty."""
    path = readable_file(value)
    if path:
        try:
            ssl.create_default_context().load_verify_locations(cafile=path)
        except (ssl.SSLError, ValueError):
            raise ValueError(f"{path} holds no PEM certificate") from None
    return path


def boolean(value: Any) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    word = text(value).lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def output_path(value: Any) -> str:
    """A file path whose folder exists or can be made, or empty."""
    path = text(value)
    if path:
        if os.path.isdir(path):
            raise ValueError(f"{path} is a directory")
        folder = os.path.dirname(os.path.abspath(path))
        existing = folder
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
            raise ValueError(f"cannot write to {folder}")
    return path


def check_output_paths(config: PackConfig) -> None:
    """Make sure each output file can be written, before any load: its folder is made, a file is written there.

    os.access says yes to root for folders nobody can write (/proc), so the folder is made
    (os.makedirs) and a probe file created and removed in it; an existing file is opened
    for appending (its content untouched). OptionError names the first option that fails.
    """
    for flag, path in config.outputs.paths():
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
            probe_fd, probe = tempfile.mkstemp(prefix=".flapping-pack-probe-", dir=folder)
            os.close(probe_fd)
            os.unlink(probe)
            if os.path.exists(path):
                with open(path, "ab"):
                    pass
        except OSError as error:
            raise OptionError(f"{flag}: cannot write to {folder} ({error.strerror or error})") from None


# --- the table of options ---------------------------------------------------------------


@dataclass(frozen=True)
class OptionSpec:
    """One option of the pack: its flag, parser, default and help."""

    flag: str  # e.g. "--flap-connected-ms"
    parse: Callable[[Any], Any]  # str or typed value -> typed value; ValueError on bad input
    default: Any  # typed default; also decides the web UI's input type
    help: str  # one line, shown by --help and in the web UI
    secret: bool = False  # masked in the web UI and never logged
    boolean_flag: bool = False  # --x / --no-x
    repeatable: bool = False  # given once per value (--ws-header A --ws-header B)
    file: bool = False  # a path whose file every worker needs: the master sends its content (FILES_KEY)

    @property
    def dest(self) -> str:
        """The attribute name on Locust's parsed options."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env_var(self) -> str:
        """LOCUST_ + the upper-case name."""
        return "LOCUST_" + self.dest.upper()


_timing = FlapTiming()
_client = ClientSettings()
_phases = PhaseSettings()
_steady = SteadySettings()
_monitor = MonitorSettings()
_network = NetworkSettings()
_ref_server = RefServerSettings()
_config = PackConfig()


def _threshold_option(info: ThresholdInfo) -> OptionSpec:
    """The option of one threshold: `--max-fd-growth` for `max_fd_growth`, typed by its default."""
    if info.name.startswith("min_"):
        parse: Callable[[Any], Any] = percentage
    elif info.can_be_off:
        parse = number_in(info.value_type, NumberRange(low=OFF))
    else:
        parse = non_negative_int if info.value_type is int else non_negative_float
    help_text = f"{info.help[0].upper()}{info.help[1:]} ({info.unit})"
    return OptionSpec("--" + info.name.replace("_", "-"), parse, info.default, help_text)


OPTIONS: tuple[OptionSpec, ...] = (
    # What each flapping user does.
    OptionSpec("--flap-connected-ms", non_negative_float, _timing.connected_ms, "Hold time per cycle, ms"),
    OptionSpec("--flap-disconnected-ms", non_negative_float, _timing.disconnected_ms, "Pause between cycles, ms"),
    OptionSpec("--flap-cycles", non_negative_int, _timing.cycles, "Cycles per user (0: until the run ends)"),
    OptionSpec(
        "--flap-jitter",
        jitter_fraction,
        _timing.jitter,
        "Jitter, a fraction of each duration, in [0, 1): how far durations spread (see --flap-jitter-dist)",
    ),
    OptionSpec(
        "--flap-jitter-dist",
        choice(JITTER_DISTRIBUTIONS),
        _timing.jitter_dist,
        "Jitter distribution: uniform (+/- jitter), normal (sigma jitter/2, clipped to +/- jitter) or exponential "
        "(1 - jitter of the duration plus an exponential part, mean the duration, capped at 1 + 9 x jitter)",
    ),
    OptionSpec("--flap-seed", optional_int, "", "Seed for a reproducible schedule (empty: random)"),
    OptionSpec(
        "--flap-disconnect",
        disconnect_mix,
        str(DisconnectMix()),
        "How each cycle disconnects, drawn by weight, e.g. clean:6,abrupt:2,reset:1 (a bare style weighs 1); "
        "styles: clean, abrupt, reset, half-open, handshake-abort",
    ),
    OptionSpec(
        "--flap-storm",
        boolean,
        _timing.storm,
        "Storm: every user connects on a shared clock grid (period hold + pause) and all drop together; no jitter",
        boolean_flag=True,
    ),
    OptionSpec(
        "--flap-echo", boolean, True, "Send a text message during each hold and check its echo", boolean_flag=True
    ),
    OptionSpec("--ws-timeout-s", positive_float, _client.timeout_s, "Timeout of every WebSocket operation, seconds"),
    OptionSpec(
        "--ws-conversation",
        readable_file,
        "",
        "What each connection says after (re)connecting: a YAML or JSON file of open/hold/close steps "
        "(empty: an echo per hold; see the README)",
        file=True,
    ),
    OptionSpec(
        "--ws-protocol",
        choice(PROTOCOL_NAMES),
        "raw",
        "Framing of the conversation: raw (WebSocket text), socketio (Socket.IO 5), graphql-ws "
        "(graphql-transport-ws) or mqtt (MQTT 3.1.1/5.0 over WebSocket); a conversation file's protocol: key wins",
    ),
    OptionSpec(
        "--ws-header",
        header_lines,
        (),
        "An extra handshake header, 'Name: value' (repeat the option for more; values are secret)",
        secret=True,
        repeatable=True,
    ),
    OptionSpec(
        "--ws-subprotocol",
        name_list,
        (),
        "Subprotocols to offer, comma-separated; the server must choose one of them",
    ),
    OptionSpec(
        "--ws-origin",
        text,
        ORIGIN_AUTO,
        "Origin header: auto (http(s)://host[:port] of --host, as browsers and websocket-client send), "
        "a value, or empty for none",
    ),
    OptionSpec("--ws-ca-file", ca_file, "", "wss://: a PEM file of CA certificates to trust (a private CA)", file=True),
    OptionSpec("--ws-auth-token", text, "", "Auth token sent to the server (secret; never logged)", secret=True),
    OptionSpec(
        "--ws-auth-in",
        choice(AUTH_PLACES),
        _client.auth_in,
        "Where the token goes: header (Authorization: Bearer), query (?token=) or payload (the protocol's own "
        "auth: Socket.IO's CONNECT auth, GraphQL's connection_init payload, MQTT's CONNECT password); "
        "${token} in a conversation",
    ),
    OptionSpec(
        "--flap-source-addresses",
        source_address_count,
        1,
        "Connect from this many source addresses in turn, 127.0.0.1 to 127.0.0.N (a server on loopback only): "
        "N times the connections per minute when the client keeps the TIME_WAIT entries",
    ),
    # Network conditions: a TCP fault proxy between the users and the server (off by default).
    OptionSpec(
        "--net-latency-ms",
        non_negative_float,
        _network.latency_ms,
        "Added latency per direction through the fault proxy, ms",
    ),
    OptionSpec("--net-jitter-ms", non_negative_float, _network.jitter_ms, "Latency jitter, +/- ms (uniform)"),
    OptionSpec(
        "--net-bandwidth-kbps",
        non_negative_float,
        _network.bandwidth_kbps,
        "Bandwidth limit per direction, KiB/s (0: none)",
    ),
    OptionSpec("--net-reset-pct", percentage, _network.reset_pct, "Share of connections the proxy resets (TCP RST), %"),
    OptionSpec(
        "--net-reset-after-ms",
        non_negative_float,
        _network.reset_after_ms,
        "When a chosen connection is reset, ms after its first bytes (0: at once, the handshake fails)",
    ),
    # The bundled reference server, used when --host is not given.
    OptionSpec(
        "--ref-server-fault",
        fault_modes,
        "none",
        f"Fault mode(s) of the bundled server, comma-separated: {', '.join(FAULT_MODES)}",
    ),
    OptionSpec(
        "--ref-server-protocol",
        choice(REF_SERVER_PROTOCOLS),
        _ref_server.protocol,
        "What the bundled server speaks: echo, app (greeting, JSON ping/pong, auth message, agent responses, "
        "a per-user stream resumed by offset), "
        "socketio, or mqtt (MQTT 3.1.1/5.0 over WebSocket, an agent per session)",
    ),
    # What the monitor watches.
    OptionSpec("--server-pid", optional_pid, "", "PID of the server process (tree) to watch"),
    OptionSpec("--server-port", optional_port, "", "Watch the process listening on this local port"),
    OptionSpec("--server-metrics-url", http_url, "", "Prometheus /metrics URL of the server"),
    OptionSpec("--agents-metric", text, "", "Gauge at the metrics URL counting per-connection server objects"),
    OptionSpec("--monitor-interval-s", positive_float, _monitor.interval_s, "Seconds between resource samples"),
    OptionSpec(
        "--baseline-s", non_negative_float, _phases.baseline_s, "Seconds of baseline sampling before any user connects"
    ),
    OptionSpec(
        "--settle-s",
        non_negative_float,
        _phases.settle_s,
        "Least seconds of each settle, after a round's last cycle: the settle goes on while a judged series "
        "(memory, fds, threads, connections, agents) is still falling toward its baseline",
    ),
    OptionSpec(
        "--settle-max-s",
        non_negative_float,
        _phases.settle_max_s,
        "Most seconds of each settle; a series still falling then fails its check as still falling",
    ),
    OptionSpec(
        "--flap-rounds",
        round_count,
        _phases.rounds,
        "Rounds of the same flapping, each followed by a settle: memory, fds and agents are judged on what "
        "rounds after the first add to its settled level (a high-water mark is reached in round 1); "
        "1: judged from baseline to settled",
    ),
    OptionSpec("--resource-csv", output_path, "", "Write the resource timeline to this CSV file"),
    # After the flapping, and beside it.
    OptionSpec(
        "--recovery-timeout-s",
        positive_float,
        _config.recovery_timeout_s,
        "How long the recovery probe tries for a good round trip, s",
    ),
    OptionSpec(
        "--steady-users", non_negative_int, _steady.users, "Users holding one long-lived connection during the flapping"
    ),
    OptionSpec("--steady-interval-ms", positive_float, _steady.interval_ms, "Time between a steady user's echoes, ms"),
    # The verdict: one option per threshold, defaults and help from `Thresholds`.
    *(_threshold_option(info) for info in threshold_info()),
    OptionSpec("--verdict-json", output_path, "", "Write the verdict as JSON to this file"),
    OptionSpec("--junit-xml", output_path, "", "Write the verdict as JUnit XML to this file"),
)

SECRET_DESTS = frozenset(spec.dest for spec in OPTIONS if spec.secret)


def _argparse_type(spec: OptionSpec) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            return spec.parse(value)
        except ValueError as error:
            # Never echo a secret's value back.
            raise argparse.ArgumentTypeError("invalid value" if spec.secret else str(error)) from None

    parse.__name__ = spec.dest  # argparse names the type in some messages
    return parse


class _LiteralHelp(str):
    """A help text argparse prints as it is: its `%` are no format directives (argparse applies `%` to help)."""

    def __mod__(self, _params: Any) -> str:
        return str(self)


# --help lists the pack's options in these groups, in this order: a flag goes to the first group one of
# whose prefixes it starts with (the table's order within a group); the last group takes the rest.
OPTION_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("flapping-pack: flapping users", "What each flapping user does", ("--flap-",)),
    ("flapping-pack: connections", "The WebSocket handshake and what each connection says", ("--ws-",)),
    ("flapping-pack: network conditions", "A TCP fault proxy between the users and the server", ("--net-",)),
    ("flapping-pack: bundled server", "The reference server, used when --host is not given", ("--ref-server-",)),
    (
        "flapping-pack: monitor and phases",
        "What the monitor watches; baseline, settle and recovery",
        ("--server-", "--agents-", "--monitor-", "--baseline-", "--settle-", "--resource-", "--recovery-"),
    ),
    ("flapping-pack: steady users", "Users holding one connection during the flapping", ("--steady-",)),
    ("flapping-pack: verdict", "Thresholds and the verdict's files", ("--max-", "--min-", "--verdict-", "--junit-")),
)
MORE_OPTIONS_GROUP = ("flapping-pack: more options", "Options of no group above (add their prefix to OPTION_GROUPS)")


def option_group(spec: OptionSpec) -> str:
    """The --help group of an option (see OPTION_GROUPS)."""
    if spec.flag == "--flap-rounds":
        return "flapping-pack: monitor and phases"
    for title, _description, prefixes in OPTION_GROUPS:
        if any(spec.flag.startswith(prefix) for prefix in prefixes):
            return title
    return MORE_OPTIONS_GROUP[0]


def help_line(spec: OptionSpec) -> str:
    """An option's line in --help and the web UI: its help and, unless secret, its default."""
    return spec.help + ("" if spec.secret else f" (default: {spec.default!r})")


def add_pack_options(parser: Any) -> None:
    """Register the pack's options on Locust's parser, in groups (OPTION_GROUPS)."""
    groups = {title: parser.add_argument_group(title, description) for title, description, _ in OPTION_GROUPS}
    for spec in OPTIONS:
        title = option_group(spec)
        if title not in groups:
            groups[title] = parser.add_argument_group(*MORE_OPTIONS_GROUP)
        group = groups[title]
        kwargs: dict[str, Any] = {
            "default": spec.default,
            "help": _LiteralHelp(help_line(spec)),
            "env_var": spec.env_var,
        }
        if spec.boolean_flag:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif spec.repeatable:
            kwargs["action"] = "append"  # a list of raw lines; parsed (and checked) by config_from_options
            kwargs["default"] = None
        else:
            kwargs["type"] = _argparse_type(spec)
        action = group.add_argument(spec.flag, **kwargs)
        # What LocustArgumentParser.add_argument would set; groups do not take these keywords.
        action.include_in_web_ui = True
        action.is_secret = spec.secret
        action.is_required = False
        action.is_multiple = False


# --- the validated configuration ---------------------------------------------------------


_THRESHOLD_FIELDS = {f.name for f in dataclasses.fields(Thresholds)}


# --- files the workers need: sent by the master with its options -------------------------

FILES_KEY = "flapping_pack_files"  # on Locust's parsed options: {dest: {"path": ..., "text": ...}}
MAX_SHIPPED_FILE_BYTES = 4 * 1024 * 1024  # a conversation or a CA bundle; more is not what these options mean


def attach_file_contents(options: Any) -> None:
    """On the master: put the content of each file option's file on `options`, to go to the workers with them.

    Locust sends the master's parsed options with every spawn message; a worker anywhere then
    uses the master's files instead of looking for them at the same path on its own disk.
    """
    files: dict[str, dict[str, str]] = {}
    for spec in OPTIONS:
        path = text(getattr(options, spec.dest, "")) if spec.file else ""
        if path:
            try:
                with open(path, encoding="utf-8") as file:
                    files[spec.dest] = {"path": path, "text": file.read(MAX_SHIPPED_FILE_BYTES + 1)}
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or error
                raise OptionError(f"{spec.flag}: cannot read {path} ({reason})") from None
            if len(files[spec.dest]["text"]) > MAX_SHIPPED_FILE_BYTES:
                raise OptionError(f"{spec.flag}: {path} is larger than {MAX_SHIPPED_FILE_BYTES // 1024 // 1024} MiB")
    setattr(options, FILES_KEY, files)


def shipped_file(options: Any, spec: OptionSpec) -> str | None:
    """The content the master sent for this option's current path, if any."""
    files = getattr(options, FILES_KEY, None) or {}
    shipped = files.get(spec.dest)
    if shipped and shipped.get("path") == text(getattr(options, spec.dest, "")):
        return str(shipped["text"])
    return None


def _local_copy(content: str, suffix: str) -> str:
    """A file on this machine holding `content` (a shipped CA bundle: ssl loads CA files by path)."""
    import hashlib

    folder = os.path.join(tempfile.gettempdir(), "flapping-pack-files")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, hashlib.sha256(content.encode()).hexdigest()[:16] + suffix)
    if not os.path.exists(path):
        fd, partial = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(content)
        os.replace(partial, path)
    return path


def _parsed(spec: OptionSpec, options: Any) -> Any:
    value = getattr(options, spec.dest, spec.default)
    if spec.file and shipped_file(options, spec) is not None:
        return text(value)  # the master's path: its content came with the options
    try:
        return spec.parse(value)
    except ValueError as error:
        shown = "invalid value" if spec.secret and not spec.repeatable else str(error)  # header errors name no value
        raise OptionError(f"{spec.flag}: {shown}") from None


def config_from_options(options: Any) -> PackConfig:
    """Build the validated config from Locust's parsed options (or the web UI's values): the one translation."""
    values = {spec.dest: _parsed(spec, options) for spec in OPTIONS}
    shipped = {spec.dest: shipped_file(options, spec) for spec in OPTIONS if spec.file}
    if shipped.get("ws_ca_file") is not None:
        try:
            values["ws_ca_file"] = ca_file(_local_copy(str(shipped["ws_ca_file"]), ".pem"))
        except ValueError as error:
            raise OptionError(f"--ws-ca-file: {error}") from None
    if values["flap_storm"] and values["flap_connected_ms"] + values["flap_disconnected_ms"] <= 0:
        raise OptionError("--flap-storm: needs --flap-connected-ms or --flap-disconnected-ms above 0")
    conversation = _conversation(values, shipped.get("ws_conversation"))
    if getattr(options, "master", False) or getattr(options, "worker", False):
        try:
            check_across_workers(conversation)
        except ConversationError as error:
            raise OptionError(f"--ws-conversation: {values['ws_conversation']}: {error}") from None
    if values["ws_auth_in"] == "payload" and conversation.protocol == "raw":
        raise OptionError(
            "--ws-auth-in: payload needs --ws-protocol socketio, graphql-ws or mqtt (raw: use ${token} in a step)"
        )
    return PackConfig(
        flap=FlapSettings(
            timing=FlapTiming(
                connected_ms=values["flap_connected_ms"],
                disconnected_ms=values["flap_disconnected_ms"],
                jitter=values["flap_jitter"],
                cycles=values["flap_cycles"],
                seed=values["flap_seed"],
                jitter_dist=values["flap_jitter_dist"],
                storm=values["flap_storm"],
            ),
            disconnect=DisconnectMix.parse(values["flap_disconnect"]),
            source_addresses=values["flap_source_addresses"],
        ),
        client=ClientSettings(
            timeout_s=values["ws_timeout_s"],
            auth_token=values["ws_auth_token"],
            auth_in=values["ws_auth_in"],
            headers=values["ws_header"],
            subprotocols=values["ws_subprotocol"],
            origin=None if values["ws_origin"] == ORIGIN_AUTO else values["ws_origin"],
            ca_file=values["ws_ca_file"],
            conversation=conversation,
        ),
        phases=PhaseSettings(
            baseline_s=values["baseline_s"],
            settle_s=values["settle_s"],
            settle_max_s=max(values["settle_s"], values["settle_max_s"]),
            rounds=values["flap_rounds"],
        ),
        steady=SteadySettings(users=values["steady_users"], interval_ms=values["steady_interval_ms"]),
        ref_server=RefServerSettings(protocol=values["ref_server_protocol"], faults=values["ref_server_fault"]),
        monitor=MonitorSettings(
            server_pid=values["server_pid"],
            server_port=values["server_port"],
            metrics_url=values["server_metrics_url"],
            agents_metric=values["agents_metric"],
            interval_s=values["monitor_interval_s"],
        ),
        network=NetworkSettings(
            latency_ms=values["net_latency_ms"],
            jitter_ms=values["net_jitter_ms"],
            bandwidth_kbps=values["net_bandwidth_kbps"],
            reset_pct=values["net_reset_pct"],
            reset_after_ms=values["net_reset_after_ms"],
        ),
        outputs=OutputSettings(
            verdict_json=values["verdict_json"], junit_xml=values["junit_xml"], resource_csv=values["resource_csv"]
        ),
        recovery_timeout_s=values["recovery_timeout_s"],
        thresholds=Thresholds(**{name: values[name] for name in _THRESHOLD_FIELDS if name in values}),
    )


def _conversation(values: dict[str, Any], shipped_text: str | None) -> Conversation:
    """The conversation file (or its content, sent by the master), or the built-in echo (its protocol from
    --ws-protocol)."""
    path = values["ws_conversation"]
    try:
        if path and shipped_text is not None:
            return load_conversation_text(shipped_text, path, values["ws_protocol"])
        if path:
            return load_conversation(path, values["ws_protocol"])
        conversation = echo_conversation(values["flap_echo"] and values["ws_protocol"] == "raw")
        return dataclasses.replace(conversation, protocol=values["ws_protocol"])
    except ConversationError as error:
        raise OptionError(f"--ws-conversation: {error}") from None


def validate_ws_host(host: str) -> str:
    """Check a --host for the flapping users: ws:// or wss:// with a host name."""
    parts = urlsplit(host)
    if parts.scheme not in ("ws", "wss"):
        raise OptionError(
            f"--host: must start with ws:// or wss://, got {parts.scheme + '://' if parts.scheme else host!r}"
        )
    try:
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise OptionError("--host: malformed port") from None
    if not parts.hostname:
        raise OptionError("--host: no host name")
    if parts.query and "token=" in parts.query:
        raise OptionError("--host: pass the token with --ws-auth-token, not in the URL")
    return host


def check_host_resolves(host: str) -> None:
    """A --host whose name does not resolve is bad input, refused before any load."""
    name = urlsplit(host).hostname or ""
    try:
        socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise OptionError(f"--host: cannot resolve the host name {name!r}") from None


def is_loopback_host(host: str) -> bool:
    """True when a ws:// URL points at this machine's loopback."""
    name = urlsplit(host).hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
