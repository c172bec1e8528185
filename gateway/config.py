"""The gateway's configuration: one TOML file, validated completely at start-up.

Every key has a default (docs/gateway.md and gateway/example-config.toml list
them), so an empty file or no file at all gives a working gateway on
localhost. Unknown keys are errors rather than silently ignored: a misspelt
`ack_timout_s` must not leave an alarm desk running with the default.
"""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path
from dataclasses import dataclass, field, fields

from contract.protocol import NAME_RE, parse_mqtt_url
from gateway.accounts import check_operator_hash
from gateway.routing import parse_routing_config


class ConfigError(Exception):
    """The configuration is unusable; the message says what and where."""


@dataclass(frozen=True)
class GatewaySection:
    id: str = "gw-1"
    db: str = "lonewatch.db"


@dataclass(frozen=True)
class MqttSection:
    url: str = "mqtt://127.0.0.1:1883"
    # Fixed so the broker keeps our persistent session (and the QoS 1 alarms
    # queued in it) across gateway restarts. Empty means "lonewatch-<gateway id>".
    client_id: str = ""
    username: str = ""
    password: str = ""
    # With mqtts://: the CA that signed the broker's certificate (`lonewatch
    # certs` makes ca.crt); empty trusts the system's CAs.
    ca_file: str = ""
    keepalive: int = 30
    connect_timeout_s: float = 5.0

    @property
    def host(self) -> str:
        return parse_mqtt_url(self.url)[0]

    @property
    def port(self) -> int:
        return parse_mqtt_url(self.url)[1]

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts:")


@dataclass(frozen=True)
class AlarmsSection:
    ack_timeout_s: float = 60.0


@dataclass(frozen=True)
class SupervisionSection:
    heartbeat_interval_s: float = 30.0
    missed_heartbeats: int = 3
    low_battery_pct: int = 20


@dataclass(frozen=True)
class SessionsSection:
    reminder_before_s: float = 300.0
    # For a session started on the device without a duration.
    default_duration_s: float = 7200.0
    # How often active sessions are checked; overdue is raised within this of
    # the due time (the issue asks for 5 s).
    check_interval_s: float = 1.0
    # The longest session the desk may register or extend to, from now.
    max_duration_s: float = 12 * 3600.0
    # What an extend adds when it names no duration (the wearable's gesture).
    extend_s: float = 1800.0
    # The amber timer of a session started on the device (0: none, only its end).
    device_check_in_s: float = 0.0
    # A check-in that answers a session past its end: the worker is fine but
    # still there, so the end moves this far on instead of raising again at once.
    late_check_in_extends_s: float = 900.0


@dataclass(frozen=True)
class PrivacySection:
    retention_days: float = 90.0
    # Raw heartbeats are most of the rows (about 2.9 million a day for 1,000
    # devices) and say little after a while: online, offline and lost contact
    # are audit entries of their own, kept for retention_days.
    heartbeat_retention_days: float = 14.0
    purge_interval_s: float = 3600.0


def _no_passphrase():
    # Without this, OpenSSL would ask for the key's passphrase on the terminal of a service.
    raise ConfigError("[dashboard] tls_key is encrypted with a passphrase; give the gateway an unencrypted key "
                      "readable only by its user")


@dataclass(frozen=True)
class DashboardSection:
    host: str = "127.0.0.1"
    port: int = 8080
    operators: dict = field(default_factory=dict)
    # PEM files; both set means the desk is served over HTTPS only.
    tls_cert: str = ""
    tls_key: str = ""

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or None for plain HTTP; a ConfigError names the file at fault."""
        if not self.tls_cert:
            return None
        for key, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(f"[dashboard] {key}: cannot read {path!r} ({exc.strerror})") from None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key, password=_no_passphrase)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise ConfigError(f"[dashboard] tls_key {self.tls_key!r} is not the private key of "
                                  f"tls_cert {self.tls_cert!r}") from None
            raise ConfigError(
                f"[dashboard] tls_cert {self.tls_cert!r} and tls_key {self.tls_key!r} are not a PEM certificate "
                f"and its unencrypted private key ({exc.reason or exc})") from None
        return context


@dataclass(frozen=True)
class DevicesSection:
    # Device ids known to this site; alarms from others still become
    # incidents, marked as coming from an unregistered device.
    registered: tuple = ()


@dataclass(frozen=True)
class Config:
    gateway: GatewaySection = GatewaySection()
    mqtt: MqttSection = MqttSection()
    alarms: AlarmsSection = AlarmsSection()
    supervision: SupervisionSection = SupervisionSection()
    sessions: SessionsSection = SessionsSection()
    privacy: PrivacySection = PrivacySection()
    dashboard: DashboardSection = DashboardSection()
    devices: DevicesSection = DevicesSection()
    routing: object = None  # gateway.routing.RoutingConfig
    source: str = "defaults"

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"lonewatch-{self.gateway.id}"

    @property
    def gateway_id(self) -> str:
        return self.gateway.id

    @property
    def db(self) -> str:
        return self.gateway.db


SECTIONS = {
    "gateway": GatewaySection,
    "mqtt": MqttSection,
    "alarms": AlarmsSection,
    "supervision": SupervisionSection,
    "sessions": SessionsSection,
    "privacy": PrivacySection,
    "dashboard": DashboardSection,
    "devices": DevicesSection,
}

# Override name -> (section, key): what the command line may set without a file.
OVERRIDES = {
    "gateway_id": ("gateway", "id"),
    "db": ("gateway", "db"),
    "mqtt_url": ("mqtt", "url"),
    "client_id": ("mqtt", "client_id"),
    "http_host": ("dashboard", "host"),
    "http_port": ("dashboard", "port"),
    "operators": ("dashboard", "operators"),
    "ack_timeout_s": ("alarms", "ack_timeout_s"),
    "registered_devices": ("devices", "registered"),
}


def _positive(where, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        return f"{where} must be a positive number, got {v!r}"
    return None


def _non_negative(where, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        return f"{where} must be a number, 0 or more, got {v!r}"
    return None


def _positive_int(where, v):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        return f"{where} must be a positive integer, got {v!r}"
    return None


def _percent(where, v):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
        return f"{where} must be an integer from 0 to 100, got {v!r}"
    return None


def _port(where, v):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        return f"{where} must be a port number 0-65535, got {v!r}"
    return None


def _text(where, v):
    if not isinstance(v, str):
        return f"{where} must be a string, got {v!r}"
    return None


def _nonempty(where, v):
    if not isinstance(v, str) or not v:
        return f"{where} must be a non-empty string, got {v!r}"
    return None


def _name(where, v):
    if not isinstance(v, str) or not NAME_RE.match(v):
        return f"{where} must be lower-case letters, digits, '-' or '_' (max 32), got {v!r}"
    return None


def _mqtt_url(where, v):
    try:
        parse_mqtt_url(v)
    except ValueError as exc:
        return f"{where}: {exc}"
    return None


def _ca_file(where, v):
    if not isinstance(v, str):
        return f"{where} must be a file name, got {v!r}"
    if v and not Path(v).is_file():
        return f"{where}: no such file {v!r}"
    return None


def _operators(where, v):
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(p, str) and p for k, p in v.items()):
        return f"{where} must be a table of name = \"password hash\" (non-empty strings), got {v!r}"
    for name, stored in v.items():
        problem = check_operator_hash(name, stored)
        if problem:
            return f"{where}: {problem}"
    return None


def _device_list(where, v):
    if not isinstance(v, list) or not all(isinstance(d, str) and NAME_RE.match(d) for d in v):
        return f"{where} must be a list of device ids (lower-case letters, digits, '-', '_'), got {v!r}"
    return None


CHECKS = {
    ("gateway", "id"): _name,
    ("gateway", "db"): _nonempty,
    ("mqtt", "url"): _mqtt_url,
    ("mqtt", "client_id"): _text,
    ("mqtt", "username"): _text,
    ("mqtt", "password"): _text,
    ("mqtt", "ca_file"): _ca_file,
    ("mqtt", "keepalive"): _positive_int,
    ("mqtt", "connect_timeout_s"): _positive,
    ("alarms", "ack_timeout_s"): _positive,
    ("supervision", "heartbeat_interval_s"): _positive,
    ("supervision", "missed_heartbeats"): _positive_int,
    ("supervision", "low_battery_pct"): _percent,
    ("sessions", "reminder_before_s"): _positive,
    ("sessions", "check_interval_s"): _positive,
    ("sessions", "default_duration_s"): _positive,
    ("sessions", "max_duration_s"): _positive,
    ("sessions", "extend_s"): _positive,
    ("sessions", "device_check_in_s"): _non_negative,
    ("sessions", "late_check_in_extends_s"): _positive,
    ("privacy", "retention_days"): _positive,
    ("privacy", "heartbeat_retention_days"): _positive,
    ("privacy", "purge_interval_s"): _positive,
    ("dashboard", "host"): _nonempty,
    ("dashboard", "port"): _port,
    ("dashboard", "operators"): _operators,
    ("dashboard", "tls_cert"): _text,
    ("dashboard", "tls_key"): _text,
    ("devices", "registered"): _device_list,
}


def _section(source: str, name: str, table) -> object:
    cls = SECTIONS[name]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{source}: [{name}] has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
    values = {}
    for key, value in table.items():
        problem = CHECKS[(name, key)](f"[{name}] {key}", value)
        if problem:
            raise ConfigError(f"{source}: {problem}")
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(getattr(cls(), key), float):
            value = float(value)
        values[key] = tuple(value) if isinstance(value, list) else value
    section = cls(**values)
    if name == "mqtt" and section.ca_file and not section.tls:
        raise ConfigError(f"{source}: [mqtt] ca_file is set but url {section.url} is plain MQTT; use mqtts://")
    return section


def load_config(path: str | None = None, **overrides) -> Config:
    """Read and validate the gateway's TOML config; raise ConfigError if unusable.

    `path` None means all defaults. `overrides` win over the file; their names:
    gateway_id, db, mqtt_url, client_id, http_host, http_port, operators, ack_timeout_s,
    registered_devices.
    An override of None is ignored, so a CLI can pass its options straight through.
    """
    source = path or "defaults"
    raw: dict = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - set(SECTIONS) - {"routing"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join('[%s]' % u for u in unknown)}; "
            f"allowed: {', '.join('[%s]' % s for s in (*SECTIONS, 'routing'))}"
        )
    tables = {}
    for name in SECTIONS:
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table, got {table!r}")
        tables[name] = dict(table)
    for name, value in overrides.items():
        if name not in OVERRIDES:
            raise ConfigError(f"unknown override {name!r}; allowed: {', '.join(OVERRIDES)}")
        if value is not None:
            section, key = OVERRIDES[name]
            tables[section][key] = value
    sections = {name: _section(source, name, tables[name]) for name in SECTIONS}
    privacy = sections["privacy"]
    if privacy.heartbeat_retention_days > privacy.retention_days:
        raise ConfigError(f"{source}: [privacy] heartbeat_retention_days ({privacy.heartbeat_retention_days:g}) "
                          f"cannot be longer than retention_days ({privacy.retention_days:g})")
    dashboard = sections["dashboard"]
    if bool(dashboard.tls_cert) != bool(dashboard.tls_key):
        raise ConfigError(f"{source}: [dashboard] tls_cert and tls_key go together: set both (HTTPS) or neither (HTTP)")
    try:
        dashboard.ssl_context()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        routing = parse_routing_config(raw.get("routing", {}))
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return Config(**sections, routing=routing, source=source)
