"""Operations: health, Prometheus metrics, reconnecting after a broker restart."""

from __future__ import annotations

import json

from gateway_harness import Device, make_config, parse_metrics, running_gateway, wait_for

from dashboard.metrics import registry_for, render

REGISTERED = {"registered": ["dev-001"]}


async def test_health_and_metrics_describe_the_gateway(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        device.heartbeat()
        device.alarm("panic")
        device.publish("alarm", b"[]")
        await wait_for(lambda: len(gateway.store.list_incidents()) == 2, what="two incidents")
        await device.wait_command("delivered")
        await wait_for(lambda: gateway.store.count_unsent_commands() == 0, what="the broker's PUBACK noted")
        health = gateway.health()
        assert health["ok"] and health["broker_connected"] and health["db_writable"]
        assert health["ingest_backlog"] == 0 and health["open_incidents"] == 2
        text = render(registry_for(gateway)).decode()
        samples = parse_metrics(text)
        for name, labels, value in (("lonewatch_messages_received_total", {"kind": "alarm"}, 1),
                                    ("lonewatch_messages_received_total", {"kind": "heartbeat"}, 1),
                                    ("lonewatch_messages_rejected_total", {"reason": "bad_json"}, 1),
                                    ("lonewatch_messages_rejected_total", {"reason": "schema"}, 0),
                                    ("lonewatch_incidents_open", {}, 2),
                                    ("lonewatch_devices_online", {}, 1),
                                    ("lonewatch_broker_connected", {}, 1),
                                    ("lonewatch_commands_sent_total", {"cmd": "delivered"}, 1)):
            assert samples[(name, frozenset(labels.items()))] == value, (name, labels)
        assert "# TYPE lonewatch_ingest_rate gauge" in text.splitlines()
        device.close()


async def test_gateway_reconnects_after_broker_restart(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        mosquitto.restart()
        await wait_for(lambda: not gateway.health()["broker_connected"], what="noticed the restart")
        assert gateway.health()["ok"] is False
        await wait_for(lambda: gateway.health()["broker_connected"], timeout=10, what="reconnected")
        device = Device(mosquitto)
        body = device.alarm("panic")
        await wait_for(lambda: [i for i in gateway.store.list_incidents() if i["alarm_id"] == body["id"]],
                       what="alarm after the restart")
        device.close()


async def test_gateway_announces_itself_online_and_offline_retained(tmp_path, mosquitto):
    from contract import protocol

    seen = []
    watcher = Device(mosquitto, device="watcher", will=False)
    watcher.client.on_message = lambda c, u, m: seen.append(json.loads(m.payload)["state"])
    watcher.client.subscribe(protocol.gateway_status_topic("gw-1"), qos=1)
    async with running_gateway(make_config(tmp_path, mosquitto)):
        await wait_for(lambda: seen == ["online"], what="online")
    await wait_for(lambda: seen == ["online", "offline"], what="offline after stop")
    watcher.close()


async def test_health_says_the_database_refuses_writes_and_recovers(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        import sqlite3

        device = Device(mosquitto)
        blocker = sqlite3.connect(gateway.config.gateway.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        body = device.alarm("panic")
        await wait_for(lambda: not gateway.health()["db_writable"], timeout=10, what="the refused write")
        health = gateway.health()
        assert health["ok"] is False and health["broker_connected"] and health["timers_running"]
        assert "locked" in health["db_error"]
        assert len(health["problems"]) == 1 and "refuses writes" in health["problems"][0]
        assert gateway.store.list_incidents() == []  # and so nothing was acknowledged

        blocker.execute("ROLLBACK")
        blocker.close()
        assert (await device.wait_command("delivered", timeout=10)).body["ref"] == body["id"]
        health = gateway.health()
        assert health["ok"] and health["problems"] == [] and health["db_error"] is None
        device.close()
