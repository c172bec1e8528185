"""The real firmware in the loop against the real gateway, the desk's HTTP
API and mosquitto, nothing standing in between: a wearer holds panic, the
incident is on the desk, the wearable feels `delivered`; the desk
acknowledges, the wearable feels help coming; the desk resolves, the
wearable stands down. Felt means: the firmware's state machine changed and
the vibration motor of its board ran afterwards."""

from __future__ import annotations

import asyncio
import time

from gateway_harness import desk_logged_in, make_config, running_gateway, wait_for
from simulator.firmware_devices import FirmwareDevice


async def felt(device: FirmwareDevice, state_line: str, since_ms: float, what: str) -> None:
    await wait_for(lambda: state_line in device.board.console, timeout=15, what=what)
    await wait_for(lambda: device.board.output_on("vibration", since_ms), timeout=5, what=f"vibration for {what}")


async def test_panic_to_stand_down_through_gateway_and_desk(tmp_path, mosquitto):
    device = FirmwareDevice(tmp_path / "dev-1", "dev-1", "hq", ("127.0.0.1", mosquitto.port),
                            settings={"heartbeat_s": 5, "delivered_timeout_s": 5})
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-1"]})
    async with running_gateway(config) as gateway, desk_logged_in(gateway) as desk:
        await asyncio.to_thread(device.start)
        try:
            await asyncio.to_thread(device.board.wait_console, "link: online", 20)

            pressed = time.time() * 1000
            await asyncio.to_thread(device.act, "hold", {"ms": 2300})
            incidents = await wait_for(gateway.store.list_incidents,
                                       timeout=10, what="the incident")
            listed = await (await desk.get("/api/incidents")).json()
            incident = next(i for i in listed if i["id"] == incidents[0]["id"])
            assert (incident["device"], incident["type"], incident["state"]) == ("dev-1", "panic", "raised")
            await felt(device, "state alarm -> delivered", pressed, "delivered felt")

            acked = time.time() * 1000
            response = await desk.post(f"/api/incidents/{incident['id']}/ack")
            assert response.status == 200, await response.text()
            await felt(device, "state delivered -> help_coming", acked, "help coming felt")

            resolved = time.time() * 1000
            response = await desk.post(f"/api/incidents/{incident['id']}/resolve", json={"reason": "test"})
            assert response.status == 200, await response.text()
            await felt(device, "state help_coming -> idle", resolved, "stand-down felt")
            assert device.felt() == ["alarm_queued", "delivered", "help_coming", "resolved"]
            assert gateway.store.get_incident(incident["id"])["state"] == "resolved"
        finally:
            await asyncio.to_thread(device.stop)
