"""Gateway configuration: defaults, overrides and clear errors at start-up."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from gateway_harness import ROOT

from gateway.config import ConfigError, load_config
from gateway.service import Gateway


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


def test_example_config_lists_exactly_the_defaults():
    example = load_config(str(ROOT / "gateway" / "example-config.toml"))
    assert dataclasses.replace(example, source="defaults") == load_config(None)


def test_defaults_without_a_file():
    config = load_config()
    assert (config.gateway.id, config.db, config.mqtt.url) == ("gw-1", "lonewatch.db", "mqtt://127.0.0.1:1883")
    assert (config.alarms.ack_timeout_s, config.supervision.missed_heartbeats, config.privacy.retention_days) == \
        (60.0, 3, 90.0)
    assert (config.dashboard.host, config.dashboard.port, config.client_id) == ("127.0.0.1", 8080, "lonewatch-gw-1")


def test_overrides_win_over_the_file(tmp_path):
    path = config_file(tmp_path, '[gateway]\ndb = "file.db"\n[dashboard]\nport = 9000\n')
    config = load_config(path, db="x.db", mqtt_url="mqtt://127.0.0.1:1884", http_port=8081, gateway_id=None)
    assert (config.db, config.mqtt.port, config.dashboard.port, config.gateway_id) == ("x.db", 1884, 8081, "gw-1")
    with pytest.raises(ConfigError, match="unknown override 'port'"):
        load_config(None, port=1)


@pytest.mark.parametrize("text, message", [
    ('[alarms]\nack_timeout_s = "x"\n', "gateway.toml: [alarms] ack_timeout_s must be a positive number, got 'x'"),
    ('[alarms]\nack_timout_s = 5\n', "[alarms] has unknown key(s) ack_timout_s; allowed: ack_timeout_s"),
    ('[alarm]\n', "unknown section(s) [alarm]"),
    ('[mqtt]\nurl = "http://broker"\n', "[mqtt] url: broker URL must look like mqtt://HOST:PORT or mqtts://HOST:PORT, got 'http://broker'"),
    ('[mqtt]\nurl = "mqtts://gw:s3cret@broker"\n', "[mqtt] url: broker URL must not hold credentials"),
    ('[mqtt]\nurl = "mqtt://broker"\nca_file = "/etc/hosts"\n', "[mqtt] ca_file is set but url mqtt://broker is plain MQTT"),
    ('[mqtt]\nurl = "mqtts://broker"\nca_file = "/nonexistent/ca.crt"\n', "[mqtt] ca_file: no such file"),
    ('[supervision]\nlow_battery_pct = 120\n', "[supervision] low_battery_pct must be an integer from 0 to 100"),
    ('[dashboard]\nport = 70000\n', "[dashboard] port must be a port number 0-65535, got 70000"),
    ('[dashboard]\noperators = { alice = 5 }\n', "[dashboard] operators must be a table of name"),
    ('[dashboard]\noperators = { alice = "hunter22" }\n', "operator 'alice': password must be a pbkdf2_sha256$... hash"),
    ('[devices]\nregistered = ["Dev 1"]\n', "[devices] registered must be a list of device ids"),
    ('[gateway]\nid = "GW one"\n', "[gateway] id must be lower-case letters"),
    ('gateway = 3\n', "[gateway] must be a table, got 3"),
    ('[routing.channels.x]\ntype = "fax"\n', "[routing.channels.x] type must be one of webhook, email, got 'fax'"),
    ('[gateway\n', "gateway.toml: not valid TOML"),
    ('[privacy]\nheartbeat_retention_days = 120\n',
     "[privacy] heartbeat_retention_days (120) cannot be longer than retention_days (90)"),
])
def test_mistakes_are_reported_with_where_and_what(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        load_config(config_file(tmp_path, text))
    assert message in str(raised.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(str(tmp_path / "nope.toml"))


async def test_unreachable_broker_fails_start_quickly(tmp_path):
    from conftest import free_port

    config = load_config(None, db=str(tmp_path / "x.db"), mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    gateway = Gateway(config)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot reach the MQTT broker at mqtt://127.0.0.1:"):
        await gateway.start()
    assert time.monotonic() - started < 6
    await gateway.stop()


def test_mqtts_urls_default_to_port_8883_and_mean_tls():
    config = load_config(None, mqtt_url="mqtts://broker.site")
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("broker.site", 8883, True)
    assert load_config(None, mqtt_url="mqtt://broker.site").mqtt.port == 1883
