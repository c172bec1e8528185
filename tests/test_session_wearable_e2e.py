"""A lone-work session from the wearable, the real firmware in the loop
(under `micropython` on the virtual board) against the real gateway, the
desk's HTTP API and mosquitto: the wearer starts a session by gesture, the
desk lists it, the reminder is felt, a check-in by gesture resets the timer,
the next one is missed, the desk gets an alarm naming the worker and phone
within 5 s of the deadline while the wearable plays the overdue pattern, the
desk acknowledges and the wearable feels help coming; the desk checks in
for the worker after a phone call and the overdue pattern stops; the desk
ends the session and the wearable plays the check-out pattern.

Short times through the gateway's [sessions] settings: the check-in timer
(the amber timer) of a session started on the wearable is 12 s, reminded 6 s
before."""

from __future__ import annotations

import asyncio
import time

from firmware_harness import buzzer_tones
from gateway_harness import desk_logged_in, make_config, running_gateway, wait_for
from simulator.board import PINS
from simulator.firmware_devices import FirmwareDevice

SESSIONS = {"check_interval_s": 0.2, "reminder_before_s": 6.0, "device_check_in_s": 12.0}


async def console(device: FirmwareDevice, pattern: str, after: int, timeout: float = 15) -> str:
    return await asyncio.to_thread(device.board.wait_console, pattern, timeout, after)


def vibration_pulses(device: FirmwareDevice, since_ms: float) -> list[int]:
    """How long the vibration motor ran each time since since_ms, in ms."""
    pulses, on = [], None
    for t, kind, gpio, values in device.board.outputs(since_ms):
        if kind == "pin" and gpio == str(PINS["vibration"]):
            if values[0] == "1" and on is None:
                on = t
            elif values[0] == "0" and on is not None:
                pulses.append(t - on)
                on = None
    return pulses


def falling_pair(tones: list[int]) -> bool:
    """The check-out pattern, 2.7 then 1.8 kHz: help coming only rises, overdue stays low."""
    return 1800 in tones and 2700 in tones[:tones.index(1800)]


async def reminder_felt(device: FirmwareDevice, since_ms: float) -> None:
    """The session_due pattern, two half-second vibrations: no other pattern felt here has them."""
    await wait_for(lambda: len([p for p in vibration_pulses(device, since_ms) if 450 <= p <= 560]) >= 2,
                   timeout=5, what="the reminder's two half-second vibrations")


async def test_a_session_started_by_gesture_is_reminded_checked_in_and_missed_then_help_comes(tmp_path, mosquitto):
    device = FirmwareDevice(tmp_path / "dev-1", "dev-1", "hq", ("127.0.0.1", mosquitto.port),
                            settings={"heartbeat_s": 5, "session_s": 600, "location": {"zone": "lab-3"}})
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-1"]}, sessions=SESSIONS)
    async with running_gateway(config) as gateway, desk_logged_in(gateway) as desk:
        await gateway.add_worker("Ann Smith", "+44 7700 900123", "", "dev-1", "admin")
        await asyncio.to_thread(device.start)
        try:
            await console(device, "link: online", 0, 20)

            mark, since = device.board.mark(), time.time() * 1000
            await asyncio.to_thread(device.act, "session_start", {"duration_s": 600})  # long + short
            await console(device, r"^queued event dev-1:\d+:\d+ session_start$", mark)
            await wait_for(lambda: gateway.sessions("active"), timeout=10, what="the session stored")
            response = await desk.get("/api/sessions?state=active")
            assert response.status == 200, await response.text()
            [session] = await response.json()
            assert (session["device"], session["worker"], session["phone"]) == ("dev-1", "Ann Smith",
                                                                                "+44 7700 900123")
            assert session["location"] == {"zone": "lab-3"}
            assert session["ends_at"] - session["started_at"] == 600          # the device's session_s

            await console(device, "^session due$", mark)
            mark = device.board.mark()
            await asyncio.to_thread(device.act, "check_in", {})                      # two short presses
            await reminder_felt(device, since)
            await console(device, r"^queued event dev-1:\d+:\d+ check_in$", mark)
            since = time.time() * 1000
            checked = await wait_for(lambda: gateway.session(session["id"])["check_ins"] == 1
                                     and gateway.session(session["id"]), timeout=10, what="the check-in")
            assert checked["due_at"] > session["due_at"] and checked["state"] == "active"
            assert gateway.store.list_incidents() == []  # checked in before the deadline

            # No check-in this time: the gateway alarms at the deadline, the wearable plays overdue.
            await console(device, "^session due$", mark)
            await reminder_felt(device, since)
            overdue = await wait_for(lambda: [i for i in gateway.store.list_incidents() if i["type"] == "overdue"],
                                     timeout=15, what="the overdue alarm")
            listed = await (await desk.get("/api/incidents")).json()
            incident = next(i for i in listed if i["id"] == overdue[0]["id"])
            assert "Ann Smith (phone +44 7700 900123)" in incident["summary"]
            assert incident["raised_at"] - checked["due_at"] < 5.0
            await console(device, "^session overdue$", mark)
            # The overdue pattern is the only one on the low tone alone.
            await wait_for(lambda: 1800 in buzzer_tones(device.board, checked["due_at"] * 1000), timeout=5,
                           what="the overdue pattern")

            acked = time.time() * 1000
            response = await desk.post(f"/api/incidents/{incident['id']}/ack")
            assert response.status == 200, await response.text()
            await console(device, f"^cmd: help_coming incident-{incident['id']}$", mark)
            # help_coming rises to the high tone, which the overdue pattern under it never plays.
            await wait_for(lambda: 2700 in buzzer_tones(device.board, acked), timeout=5, what="help coming felt")

            # The desk phones her: she is fine. Her wearable stops the overdue pattern.
            mark = device.board.mark()
            response = await desk.post(f"/api/sessions/{session['id']}/check-in", json={"note": "phoned: fine"})
            assert response.status == 200, await response.text()
            await console(device, "^cmd: session $", mark)
            await console(device, "^session active$", mark)
            # She has gone home without checking out: the desk ends the session,
            # and the wearable plays the check-out pattern and prompts no more.
            mark, ended = device.board.mark(), time.time() * 1000
            response = await desk.post(f"/api/sessions/{session['id']}/end")
            assert response.status == 200, await response.text()
            await console(device, "^cmd: session_end $", mark)
            await console(device, "^session off$", mark)
            await wait_for(lambda: falling_pair(buzzer_tones(device.board, ended)), timeout=5,
                           what="the check-out pattern's falling pair")
            assert "MemoryError" not in "\n".join(device.board.console)
        finally:
            await asyncio.to_thread(device.stop)
