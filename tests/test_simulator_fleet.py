"""The light fleet devices: they speak the protocol exactly (a busy fleet gives
the gateway incidents, heartbeats and pre-alarm events, and not one reject),
they decide with the firmware's own logic (the alarm leaves the outbox only on
the gateway's `delivered`; the desk's answers are felt), and a large fleet
runs on one network thread and stops at once."""

import threading
import time

from simulator.fleet import Fleet
from gateway_harness import make_config, running_gateway, wait_for


async def test_busy_fleet_produces_only_valid_messages(tmp_path, mosquitto):
    fleet = Fleet(mosquitto.url, 5, site="lab", seed=7, heartbeat_s=0.5, incident_every_s=1.0, prealarm_s=1)
    config = make_config(tmp_path, mosquitto, devices={"registered": [d.device for d in fleet.devices]})
    async with running_gateway(config) as gateway:
        await fleet.start()
        try:
            await wait_for(lambda: len(gateway.store.list_incidents()) >= 3, timeout=15, what="3 incidents")
            await wait_for(lambda: len(gateway.store.list_messages(kind="heartbeat")) >= 5, what="heartbeats")
        finally:
            await fleet.stop()
        assert sum(gateway.ingest.counters.rejected.values()) == 0, gateway.store.list_rejects()
        devices = {d["device"]: d for d in gateway.store.list_devices()}
        assert set(devices) == {f"sim-{n:03d}" for n in range(1, 6)}
        # A device switched off is a wearer without protection: the desk sees it.
        await wait_for(lambda: all(d["state"] == "offline" for d in gateway.store.list_devices()),
                       what="switched-off devices reported as offline")


async def test_panic_is_delivered_acknowledged_and_resolved_as_the_wearer_feels_it(tmp_path, mosquitto):
    fleet = Fleet(mosquitto.url, 1, site="lab", seed=1, incident_every_s=None)
    device = fleet.devices[0]
    config = make_config(tmp_path, mosquitto, devices={"registered": [device.device]})
    async with running_gateway(config) as gateway:
        await fleet.start()
        try:
            await wait_for(lambda: device.online, what="device online")
            fleet.call(device, "hold", 2300)
            incident = await wait_for(lambda: gateway.store.list_incidents(), timeout=10, what="incident")
            assert (incident[0]["type"], incident[0]["device"]) == ("panic", device.device)
            felt = lambda: [p for _, p in device.felt]
            await wait_for(lambda: "delivered" in felt(), what="delivered felt")
            assert len(device.box) == 0  # the gateway has it: gone from the flash
            await gateway.acknowledge(incident[0]["id"], "desk")
            await wait_for(lambda: "help_coming" in felt(), what="help_coming felt")
            await gateway.resolve(incident[0]["id"], "desk", "test")
            await wait_for(lambda: "resolved" in felt(), what="resolved felt")
            assert felt() == ["alarm_queued", "delivered", "help_coming", "resolved"]
        finally:
            await fleet.stop()


async def test_a_thousand_devices_on_one_network_thread_stop_within_the_5_seconds_a_ctrl_c_has(mosquitto):
    before = threading.active_count()
    fleet = Fleet(mosquitto.url, 1000, site="load", seed=3, incident_every_s=None)
    await fleet.start()
    try:
        await wait_for(lambda: fleet.connected() == 1000, timeout=60, what="1,000 devices connected")
        assert threading.active_count() - before == 1
    finally:
        started = time.monotonic()
        await fleet.stop()
        took = time.monotonic() - started
    assert took < 5
    assert threading.active_count() == before
