"""The demo's virtual devices speak the protocol exactly: a busy fleet gives
the gateway incidents, heartbeats and pre-alarm events, and not one reject."""

from simulator.fleet import Fleet
from gateway_harness import make_config, running_gateway, wait_for


async def test_busy_fleet_produces_only_valid_messages(tmp_path, mosquitto):
    fleet = Fleet(mosquitto.url, 5, site="lab", seed=7, heartbeat_s=0.5, incident_every_s=1.0)
    config = make_config(tmp_path, mosquitto, devices={"registered": [d.device for d in fleet.devices]})
    async with running_gateway(config) as gateway:
        for device in fleet.devices:
            device.countdown_s = 1
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
