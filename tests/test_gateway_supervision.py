"""Supervision: Last Will, lost contact, low battery as technical incidents."""

from __future__ import annotations

import asyncio

from gateway_harness import Device, make_config, next_live, running_gateway, wait_for

REGISTERED = {"registered": ["dev-001"]}


def technical(gateway, cause):
    return [i for i in gateway.store.list_incidents() if i["type"] == "technical" and i["cause"] == cause]


async def test_last_will_marks_device_offline(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        device.online()
        await wait_for(lambda: gateway.store.get_device("dev-001")["state"] == "online", what="online")
        live = gateway.subscribe_live()
        device.vanish()  # no DISCONNECT: the broker publishes the Last Will
        await next_live(live, lambda u: u["type"] == "device" and u["device"]["state"] == "offline")
        incident = (await wait_for(lambda: technical(gateway, "offline"), what="offline incident"))[0]
        assert incident["priority"] == "warning" and incident["state"] == "raised"
        assert "went offline" in incident["summary"]

        back = Device(mosquitto)
        back.online()
        await wait_for(lambda: gateway.store.get_device("dev-001")["state"] == "online", what="back online")
        back.close()
    # The retained Last Will read again by a restarted gateway is not a second incident.
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        await asyncio.sleep(0.3)
        assert len(technical(gateway, "offline")) == 1


async def test_lost_contact_after_missed_heartbeats(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions={"check_interval_s": 0.1},
                         supervision={"heartbeat_interval_s": 0.3, "missed_heartbeats": 3})
    async with running_gateway(config) as gateway:
        device = Device(mosquitto, will=False)
        device.heartbeat()
        await wait_for(lambda: gateway.store.get_device("dev-001")["state"] == "online", what="online")
        incident = (await wait_for(lambda: technical(gateway, "lost_contact"), timeout=3, what="lost"))[0]
        assert gateway.store.get_device("dev-001")["state"] == "lost"
        assert "3 missed heartbeats" in incident["summary"]
        device.heartbeat()
        await wait_for(lambda: gateway.store.get_device("dev-001")["state"] == "online", what="heard again")
        device.close()


async def test_low_battery_raises_one_technical_incident(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, supervision={"low_battery_pct": 20})
    async with running_gateway(config) as gateway:
        device = Device(mosquitto)
        device.heartbeat(battery_pct=35)
        device.heartbeat(battery_pct=19)
        device.heartbeat(battery_pct=18)
        device.heartbeat(battery_pct=17)
        await wait_for(lambda: gateway.store.get_device("dev-001")["battery_pct"] == 17, what="heartbeats")
        low = technical(gateway, "low_battery")
        assert len(low) == 1 and low[0]["alarm_count"] == 1 and low[0]["battery_pct"] == 19
        assert low[0]["priority"] == "warning"
        device.close()


async def test_heartbeats_from_unknown_device_are_listed_for_enrollment(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        stranger = Device(mosquitto, device="dev-777")
        for _ in range(3):
            stranger.heartbeat(battery_pct=5)
        await wait_for(lambda: (gateway.store.get_device("dev-777") or {}).get("unregistered_messages") == 3,
                       what="three counted heartbeats")
        assert gateway.store.list_incidents() == []  # no supervision for devices nobody enrolled
        await gateway.register_device("dev-777")
        assert gateway.store.get_device("dev-777")["registered"] is True
        stranger.close()


FAST = {"heartbeat_interval_s": 0.3, "missed_heartbeats": 3}


async def test_an_enrolled_device_never_heard_from_is_reported_once(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001", "dev-009"]},
                         sessions={"check_interval_s": 0.1}, supervision=FAST)
    async with running_gateway(config) as gateway:
        device = Device(mosquitto, will=False)
        device.heartbeat()
        incident = (await wait_for(lambda: technical(gateway, "never_seen"), timeout=3, what="never seen"))[0]
        assert incident["device"] == "dev-009" and "never been heard from" in incident["summary"]
        assert gateway.store.get_device("dev-009")["state"] == "lost"
        device.close()
    async with running_gateway(config) as gateway:
        await asyncio.sleep(1.2)  # more than a whole window, listening
        assert len(technical(gateway, "never_seen")) == 1
        late = Device(mosquitto, device="dev-009", will=False)
        late.heartbeat()
        await wait_for(lambda: gateway.store.get_device("dev-009")["state"] == "online", what="heard at last")
        late.close()


async def test_offline_and_lost_states_survive_a_gateway_restart(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001", "dev-002"]},
                         sessions={"check_interval_s": 0.1}, supervision=FAST)
    async with running_gateway(config) as gateway:
        quiet, gone = Device(mosquitto, will=False), Device(mosquitto, device="dev-002", will=False)
        quiet.heartbeat()
        # What its Last Will says, retained, without waiting for the broker to notice.
        gone.publish("status", {"v": 1, "device": "dev-002", "state": "offline"}, retain=True)
        await wait_for(lambda: technical(gateway, "lost_contact") and technical(gateway, "offline"), timeout=3,
                       what="one lost, one offline")
        quiet.close()
        gone.close()
    async with running_gateway(config) as gateway:
        assert (gateway.store.get_device("dev-001")["state"], gateway.store.get_device("dev-002")["state"]) == \
            ("lost", "offline")
        await asyncio.sleep(1.2)
        assert (len(technical(gateway, "lost_contact")), len(technical(gateway, "offline"))) == (1, 1)
