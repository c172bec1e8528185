"""Lone-work sessions: registered by the desk or the wearable, reminders,
check-ins, the check-in timer, extend, check-out, the overdue alarm and
lost contact during lone work."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from gateway_harness import Device, make_config, next_live, running_gateway, wait_for

from gateway.sessions import Conflict

REGISTERED = {"registered": ["dev-001", "dev-002"]}
FAST = {"check_interval_s": 0.1, "reminder_before_s": 1.0}


async def connected_device(gateway, mosquitto, device_id="dev-001"):
    device = Device(mosquitto, device_id)
    device.heartbeat()
    await wait_for(lambda: gateway.store.get_device(device_id)["state"] == "online", what="device online")
    return device


async def ann_wearing(gateway, device="dev-001") -> dict:
    return await gateway.add_worker("Ann Smith", "+44 7700 900123", "", device, "admin")


async def test_a_registered_session_that_runs_overdue_raises_an_alarm_saying_who_within_5s(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)
    async with running_gateway(config) as gateway:
        device = await connected_device(gateway, mosquitto)
        ann = await ann_wearing(gateway)
        live = gateway.subscribe_live()
        session = await gateway.start_session(worker_id=ann["id"], place="boiler room", duration_s=1.5,
                                              note="valve replacement", by="dave")
        assert (session["worker"], session["phone"], session["device"]) == ("Ann Smith", "+44 7700 900123", "dev-001")
        assert (await device.wait_command("session")).body["due_in_s"] == 1  # the desk registered one for her
        reminder = await device.wait_command("session_due", timeout=3)
        assert 1 <= reminder.body["due_in_s"] <= 1
        update = await next_live(live, lambda u: u["type"] == "incident" and u["incident"]["type"] == "overdue",
                                 timeout=6)
        incident = update["incident"]
        assert incident["raised_at"] - session["due_at"] < 5.0
        assert incident["priority"] == "critical"
        assert incident["summary"].startswith("OVERDUE: Ann Smith (phone +44 7700 900123) at boiler room "
                                              "did not check out by the expected end")
        assert "last check-in none" in incident["summary"]
        # Whom to call and where, as the desk's board shows them; the charge is the device's last heartbeat's.
        assert incident["session"] == {"id": session["id"], "worker_id": ann["id"], "worker": "Ann Smith",
                                       "phone": "+44 7700 900123",
                                       "place": "boiler room", "device": "dev-001", "state": "overdue",
                                       "due_at": session["due_at"], "last_check_in": None}
        assert incident["battery_pct"] == 80
        overdue = gateway.store.get_session(session["id"])
        assert overdue["state"] == "overdue" and overdue["incident_id"] == incident["id"]
        # The device learns its wearer is overdue, and a check-in from it answers.
        assert (await device.wait_command("session_due")).body["due_in_s"] == 0
        device.event("check_in", location={"zone": "boiler-2"})
        answered = await wait_for(lambda: gateway.store.get_session(session["id"])["state"] == "active"
                                  and gateway.store.get_session(session["id"]), what="check-in answers overdue")
        assert answered["ends_at"] > time.time() + 800  # late_check_in_extends_s: no second alarm at once
        # The wearer is told help is coming even though the alarm came from the gateway.
        await gateway.acknowledge(incident["id"], "dave")
        assert (await device.wait_command("help_coming")).body["ref"] == f"incident-{incident['id']}"
        device.close()


async def test_the_check_in_timer_reminds_is_reset_by_a_check_in_and_raises_when_missed(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)
    async with running_gateway(config) as gateway:
        device = await connected_device(gateway, mosquitto)
        session = await gateway.start_session(name="Bob Jones", phone="+44 7700 900456", place="roof",
                                              duration_s=3600, device="dev-001")
        # A one-minute timer would make a slow test: move its start back instead.
        gateway.store.update_session(session["id"], check_in_s=60.0, due_at=time.time() + 1.5,
                                     started_at=time.time() - 58.5)
        await device.wait_command("session_due", timeout=3)
        device.event("check_in")
        checked = await wait_for(lambda: gateway.store.get_session(session["id"])["check_ins"] == 1
                                 and gateway.store.get_session(session["id"]), what="check-in")
        assert abs(checked["due_at"] - (checked["last_check_in"] + 60)) < 0.01
        assert checked["ends_at"] == session["ends_at"]  # the end stays where it was
        gateway.store.update_session(session["id"], last_check_in=time.time() - 59.5, due_at=time.time() + 0.5)
        incident = (await wait_for(lambda: gateway.store.list_incidents(), timeout=6, what="missed check-in"))[0]
        assert "Bob Jones (phone +44 7700 900456) at roof missed the check-in due every 1 min" in incident["summary"]
        device.close()


async def test_the_wearable_starts_extends_checks_in_and_checks_out(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions={**FAST, "extend_s": 600})
    async with running_gateway(config) as gateway:
        device = await connected_device(gateway, mosquitto)
        await ann_wearing(gateway)
        start = device.event("session_start", duration_s=3600, location={"zone": "workshop"})
        session = (await wait_for(lambda: gateway.sessions("active"), what="session"))[0]
        assert (session["source"], session["worker"], session["location"]) == ("device", "Ann Smith",
                                                                               {"zone": "workshop"})
        assert abs(session["ends_at"] - session["started_at"] - 3600) < 0.01
        device.publish("event", start)  # the outbox sending it again: a duplicate, not a second session
        device.event("session_extend")
        extended = await wait_for(lambda: gateway.session(session["id"])["ends_at"] > session["ends_at"]
                                  and gateway.session(session["id"]), what="extended")
        assert abs(extended["ends_at"] - session["ends_at"] - 600) < 0.01
        device.event("check_in")
        device.event("session_end")
        ended = await wait_for(lambda: gateway.session(session["id"])["state"] == "ended"
                               and gateway.session(session["id"]), what="check-out")
        assert (ended["ended_by"], ended["ended_how"], ended["check_ins"]) == ("dev-001", "checked_out", 1)
        assert [c["actor"] for c in ended["check_in_list"]] == ["dev-001"]
        assert len(gateway.store.list_sessions()) == 1
        device.close()


async def test_a_session_event_is_dated_when_it_happened_not_when_it_arrived(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)) as gateway:
        device = await connected_device(gateway, mosquitto)
        body = {"v": 1, "device": "dev-001", "id": device.next_id(), "type": "session_start", "duration_s": 3600,
                "uptime_ms": 1000, "sent_uptime_ms": 1000 + 600_000}  # queued offline for ten minutes
        device.publish("event", body)
        session = (await wait_for(lambda: gateway.sessions("active"), what="session"))[0]
        assert abs(time.time() - 600 - session["started_at"]) < 2
        assert abs(session["ends_at"] - session["started_at"] - 3600) < 0.01
        device.close()


async def test_the_desk_checks_in_on_the_workers_behalf_extends_and_ends(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)) as gateway:
        session = await gateway.start_session(name="Cy Nkemelu", phone="0161 496 0000", place="cellar",
                                              until=datetime.fromtimestamp(time.time() + 1800, timezone.utc).isoformat())
        assert session["device"] == "" and abs(session["ends_at"] - time.time() - 1800) < 2
        checked = await gateway.check_in_session(session["id"], "dave", note="phoned: fine")
        assert checked["check_ins"] == 1
        assert gateway.session(session["id"])["check_in_list"][0] | {"at": 0} == \
            {"at": 0, "actor": "dave", "note": "phoned: fine"}
        extended = await gateway.extend_session(session["id"], "dave", duration_s=900)
        assert abs(extended["ends_at"] - session["ends_at"] - 900) < 0.01
        ended = await gateway.end_session(session["id"], "dave")
        assert (ended["state"], ended["ended_how"], ended["ended_by"]) == ("ended", "ended_by_desk", "dave")
        with pytest.raises(Conflict, match="has ended"):
            await gateway.check_in_session(session["id"], "dave")
        assert [s["id"] for s in gateway.session_history(10)[0]] == [session["id"]]


async def test_the_desk_checking_in_or_ending_tells_the_wearable(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)) as gateway:
        device = await connected_device(gateway, mosquitto)
        session = await gateway.start_session(name="Cy Nkemelu", phone="0161 496 0000", place="cellar",
                                              device="dev-001", duration_s=1800)
        await device.wait_command("session")
        checked = await gateway.check_in_session(session["id"], "dave", note="phoned: fine")
        told = await device.wait_command("session")
        assert abs(told.body["due_in_s"] - (checked["due_at"] - time.time())) < 2
        await gateway.end_session(session["id"], "dave")
        assert "due_in_s" not in (await device.wait_command("session_end")).body
        device.close()


async def test_a_session_without_a_device_runs_overdue_on_its_own(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)) as gateway:
        first = await gateway.start_session(name="Ann", phone="123 456", place="lab 1", duration_s=0.3)
        second = await gateway.start_session(name="Bob", phone="123 457", place="lab 2", duration_s=0.3)
        incidents = await wait_for(lambda: len(gateway.store.list_incidents()) == 2 and gateway.store.list_incidents(),
                                   what="two overdue alarms")
        assert {i["device"] for i in incidents} == {f"session-{first['id']}", f"session-{second['id']}"}


async def test_bad_registrations_are_refused_saying_why(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions={**FAST, "max_duration_s": 3600})
    async with running_gateway(config) as gateway:
        ok = {"name": "Ann", "phone": "123 456", "place": "roof"}
        for bad, message in (
            ({"duration_s": 0}, "more than 0"),
            ({"duration_s": -5}, "more than 0"),
            ({"duration_s": 3601}, "at most 1 h"),
            ({"duration_s": "long"}, "number of seconds"),
            ({"until": time.time() - 1}, "must be in the future"),
            ({"until": "tomorrow"}, "ISO-8601"),
            ({"duration_s": 60, "until": time.time() + 60}, "not both"),
            ({"duration_s": 60, "device": "dev-404"}, "unknown device 'dev-404'"),
            ({"duration_s": 60, "place": ""}, "place must be"),
            ({"duration_s": 60, "phone": "call me"}, "phone must be"),
        ):
            with pytest.raises(ValueError, match=message):
                await gateway.start_session(**{**ok, **bad})
        with pytest.raises(ValueError, match="no worker with id 99"):
            await gateway.start_session(worker_id=99, place="roof", duration_s=60)
        await gateway.start_session(**ok, duration_s=60, device="dev-001")  # enrolled, never heard: allowed
        with pytest.raises(Conflict, match="dev-001 is already in a lone-work session"):
            await gateway.start_session(**ok, duration_s=60, device="dev-001")
        assert len(gateway.sessions("active")) == 1


async def test_a_device_lost_during_lone_work_is_as_urgent_as_a_panic(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions=FAST)
    async with running_gateway(config) as gateway:
        working = await connected_device(gateway, mosquitto, "dev-001")
        idle = await connected_device(gateway, mosquitto, "dev-002")
        ann = await ann_wearing(gateway)
        await gateway.start_session(worker_id=ann["id"], place="plant room", duration_s=3600)
        working.vanish()
        idle.vanish()
        incidents = await wait_for(lambda: len(gateway.store.list_incidents()) == 2 and gateway.store.list_incidents(),
                                   what="two incidents")
        by_device = {i["device"]: i for i in incidents}
        lost = by_device["dev-001"]
        assert (lost["type"], lost["cause"], lost["priority"]) == ("technical", "lone_work_lost", "critical")
        assert lost["summary"].startswith("LOST CONTACT DURING LONE WORK: Ann Smith (phone +44 7700 900123) "
                                          "at plant room: dev-001 went offline")
        assert (by_device["dev-002"]["cause"], by_device["dev-002"]["priority"]) == ("offline", "warning")
