"""Lone-work sessions: reminders, check-in, overdue alarm, check-out."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import pytest
from gateway_harness import Device, make_config, next_live, running_gateway, wait_for

REGISTERED = {"registered": ["dev-001"]}
FAST = {"check_interval_s": 0.1, "reminder_before_s": 1.0}


async def connected_device(gateway, mosquitto):
    device = Device(mosquitto)
    device.heartbeat()
    await wait_for(lambda: gateway.store.get_device("dev-001")["state"] == "online", what="device online")
    return device


async def test_overdue_session_raises_alarm_within_5s(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)
    async with running_gateway(config) as gateway:
        device = await connected_device(gateway, mosquitto)
        live = gateway.subscribe_live()
        due = time.time() + 1.5
        session = await gateway.start_session("dev-001", "Ann Smith", "boiler room", "+44 7700 900123", due)
        assert session["state"] == "active" and session["source"] == "desk"
        reminder = await device.wait_command("session_due", timeout=3)
        assert 0 <= reminder.body["due_in_s"] <= 1
        update = await next_live(live, lambda u: u["type"] == "incident" and u["incident"]["type"] == "overdue",
                                 timeout=6)
        incident = update["incident"]
        assert incident["raised_at"] - due < 5.0
        assert incident["priority"] == "critical" and "Ann Smith at boiler room" in incident["summary"]
        overdue = gateway.store.get_session(session["id"])
        assert overdue["state"] == "overdue" and overdue["incident_id"] == incident["id"]
        # The wearer is told help is coming even though the alarm came from the gateway.
        await gateway.acknowledge(incident["id"], "dave")
        assert (await device.wait_command("help_coming")).body["ref"] == f"incident-{incident['id']}"
        device.close()


async def test_check_in_resets_the_due_time(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)
    async with running_gateway(config) as gateway:
        device = await connected_device(gateway, mosquitto)
        session = await gateway.start_session("dev-001", "Ann", "roof", "123",
                                              datetime.fromtimestamp(time.time() + 2.0, timezone.utc).isoformat())
        await asyncio.sleep(1.0)
        device.event("check_in", location={"zone": "roof-east"})
        await wait_for(lambda: gateway.store.get_session(session["id"])["last_check_in"], what="check-in")
        checked = gateway.store.get_session(session["id"])
        assert checked["due_at"] > session["due_at"] + 0.5
        assert checked["location"] == {"zone": "roof-east"}
        await asyncio.sleep(max(0.0, session["due_at"] + 0.3 - time.time()))  # past the original due time
        assert gateway.store.list_incidents() == []
        await gateway.end_session(session["id"], "desk")
        assert gateway.store.get_session(session["id"])["state"] == "ended"
        assert gateway.store.list_sessions(active_only=True) == []
        device.close()


async def test_session_started_and_ended_on_the_device(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)
    async with running_gateway(config) as gateway:
        device = await connected_device(gateway, mosquitto)
        device.event("session_start", duration_s=3600, location={"zone": "workshop"})
        session = (await wait_for(lambda: gateway.store.list_sessions(active_only=True), what="session"))[0]
        assert (session["source"], session["interval_s"], session["location"]) == ("device", 3600, {"zone": "workshop"})
        assert abs(session["due_at"] - session["started_at"] - 3600) < 0.01
        device.event("session_end")
        await wait_for(lambda: gateway.store.get_session(session["id"])["state"] == "ended", what="check-out")
        assert gateway.store.get_session(session["id"])["ended_by"] == "dev-001"
        device.close()


async def test_desk_session_needs_a_known_device_and_a_future_end(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        with pytest.raises(ValueError, match="unknown device 'dev-404'"):
            await gateway.start_session("dev-404", "Ann", "roof", "123", time.time() + 60)
        device = await connected_device(gateway, mosquitto)
        with pytest.raises(ValueError, match="expected_end must be in the future"):
            await gateway.start_session("dev-001", "Ann", "roof", "123", time.time() - 1)
        with pytest.raises(ValueError, match="ISO-8601"):
            await gateway.start_session("dev-001", "Ann", "roof", "123", "tomorrow")
        device.close()
