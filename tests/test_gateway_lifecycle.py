"""Incident lifecycle: acknowledge, resolve, escalate; what the wearer and the desk hear."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from gateway_harness import Device, make_config, next_live, running_gateway, wait_for

REGISTERED = {"registered": ["dev-001"]}


async def raised_incident(gateway, device, alarm_type="panic", **extra):
    body = device.alarm(alarm_type, **extra)
    incidents = await wait_for(lambda: [i for i in gateway.store.list_incidents() if i["alarm_id"] == body["id"]],
                               what="incident")
    await device.wait_command("delivered")
    # delivered_at is set once the broker acknowledged the command (PUBACK)
    return await wait_for(lambda: gateway.store.get_incident(incidents[0]["id"])["delivered_at"] and
                          gateway.store.get_incident(incidents[0]["id"]), what="delivered_at")


async def test_help_coming_sent_on_acknowledge(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        incident = await raised_incident(gateway, device)
        live = gateway.subscribe_live()
        await gateway.acknowledge(incident["id"], "alice")
        help_coming = await device.wait_command("help_coming")
        assert help_coming.body["ref"] == incident["alarm_id"] and help_coming.body["by"] == "alice"
        update = await next_live(live, lambda u: u["type"] == "incident")
        assert update["incident"]["state"] == "acknowledged"
        stored = gateway.store.get_incident(incident["id"])
        assert stored["acknowledged_by"] == "alice" and stored["acknowledged_at"] >= stored["raised_at"]
        device.close()


async def test_resolve_tells_the_wearer_to_stand_down_and_is_audited(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        incident = await raised_incident(gateway, device, "man_down", cause="fall")
        await gateway.acknowledge(incident["id"], "alice")
        await gateway.resolve(incident["id"], "bob", "false_alarm", note="dropped the device")
        stand_down = await device.wait_command("resolved")
        assert stand_down.body["ref"] == incident["alarm_id"]
        stored = gateway.store.get_incident(incident["id"])
        assert (stored["state"], stored["resolution"], stored["note"], stored["resolved_by"]) == \
            ("resolved", "false_alarm", "dropped the device", "bob")
        trail = [(a["action"], a["actor"]) for a in gateway.store.incident_audit(incident["id"])]
        assert trail == [("raised", "dev-001"), ("delivered", "gateway"), ("acknowledged", "alice"),
                         ("resolved", "bob")]
        device.close()


async def test_bad_desk_actions_are_refused_with_a_reason(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        incident = await raised_incident(gateway, device)
        with pytest.raises(ValueError, match="reason must be one of genuine, false_alarm, test, other"):
            await gateway.resolve(incident["id"], "bob", "bored")
        with pytest.raises(ValueError, match="no incident with id 999"):
            await gateway.acknowledge(999, "bob")
        await gateway.resolve(incident["id"], "bob", "test")
        with pytest.raises(ValueError, match="cannot acknowledge incident .*: it is resolved"):
            await gateway.acknowledge(incident["id"], "bob")
        with pytest.raises(ValueError, match="cannot resolve"):
            await gateway.resolve(incident["id"], "bob", "test")
        # A new panic after the incident is resolved is a new incident.
        again = await raised_incident(gateway, device)
        assert again["id"] != incident["id"]
        device.close()


async def test_cancelled_pre_alarm_is_recorded_not_an_incident(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        device.event("pre_alarm_started", cause="fall", countdown_s=20)
        device.event("pre_alarm_cancelled", cause="fall")
        await wait_for(lambda: len(gateway.store.list_messages(kind="event")) == 2, what="two events stored")
        assert gateway.store.list_incidents() == []
        assert [a["action"] for a in gateway.store.list_audit()][:2] == ["pre_alarm_cancelled", "pre_alarm_started"]
        device.close()


class Pager:
    """A real HTTP webhook receiver standing in for a paging system."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []

    async def start(self):
        app = web.Application()
        app.router.add_post("/{name}", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _hook(self, request):
        self.received.append((request.match_info["name"], json.loads(await request.read())))
        return web.Response(text="ok")

    async def stop(self):
        await self._runner.cleanup()


async def test_escalation_after_ack_timeout(tmp_path, mosquitto):
    pager = Pager()
    await pager.start()
    secret = "s" * 32
    routing = f"""
[routing.channels.tier1]
type = "webhook"
url = "http://127.0.0.1:{pager.port}/tier1"
secret = "{secret}"

[routing.channels.tier2]
type = "webhook"
url = "http://127.0.0.1:{pager.port}/tier2"
secret = "{secret}"

[routing.escalation]
tiers = [["tier1"], ["tier2"]]
"""
    config = make_config(tmp_path, mosquitto, routing, devices=REGISTERED, alarms={"ack_timeout_s": 1.0},
                         sessions={"check_interval_s": 0.2})
    try:
        async with running_gateway(config) as gateway:
            device = Device(mosquitto)
            live = gateway.subscribe_live()
            incident = await raised_incident(gateway, device)
            first = await next_live(live, lambda u: u.get("event") == "escalated", timeout=3)
            assert first["incident"]["tier"] == 1
            second = await next_live(live, lambda u: u.get("event") == "escalated", timeout=3)
            assert second["incident"]["tier"] == 2
            await gateway.acknowledge(incident["id"], "carol")
            await wait_for(lambda: ("tier2", "acknowledged") in [(n, b["event"]) for n, b in pager.received],
                           what="tier 2 told of the acknowledgement")
            escalations = [(n, b["tier"]) for n, b in pager.received if b["event"] == "escalated"]
            assert escalations[:2] == [("tier1", 1), ("tier2", 2)]
            # Acknowledged: no more re-alerts.
            await asyncio.sleep(1.5)
            assert gateway.store.get_incident(incident["id"])["tier"] == 2
            audit = [a for a in gateway.store.incident_audit(incident["id"]) if a["action"] == "escalated"]
            assert [a["detail"] for a in audit] == ["not acknowledged within 1 s; tier 1",
                                                    "not acknowledged within 1 s; tier 2"]
            # Each page that reached its receiver is on the incident's timeline.
            await wait_for(lambda: ("tier2", "acknowledged, tier 2 (attempt 1)") in [
                (a["actor"], a["detail"]) for a in gateway.store.incident_audit(incident["id"])
                if a["action"] == "notified"], what="the acknowledgement's delivery audited")
            notified = [(a["actor"], a["detail"]) for a in gateway.store.incident_audit(incident["id"])
                        if a["action"] == "notified"]
            assert ("tier1", "escalated, tier 1 (attempt 1)") in notified
            assert ("tier2", "escalated, tier 2 (attempt 1)") in notified
            device.close()
    finally:
        await pager.stop()
