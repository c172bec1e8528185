"""Privacy: location only with alarms and session events; retention purge."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from gateway_harness import Device, make_config, metric, running_gateway, wait_for

from gateway import service
from gateway.store import Store

REGISTERED = {"registered": ["dev-001"]}
DAY = 86400


async def test_location_outside_alarms_and_sessions_is_dropped_and_counted(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        device.heartbeat(location={"zone": "canteen"})
        device.event("not_worn", location={"zone": "locker"})
        device.event("check_in", location={"zone": "lab-3"})
        await wait_for(lambda: len(gateway.store.list_messages()) == 3, what="three messages")
        stored = {m["type"] or m["kind"]: m["body"] for m in gateway.store.list_messages()}
        assert "location" not in stored["heartbeat"] and "location" not in stored["not_worn"]
        assert stored["check_in"]["location"] == {"zone": "lab-3"}
        assert gateway.ingest.counters.location_dropped == 2
        assert metric(gateway, "lonewatch_location_dropped_total") == 2
        device.close()


async def test_retention_purge_leaves_audit(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        device.heartbeat()
        body = device.alarm("panic", location={"zone": "lab-3"})
        incident = (await wait_for(gateway.store.list_incidents, what="incident"))[0]
        await gateway.resolve(incident["id"], "alice", "genuine", note="Ann slipped in lab 3")
        session = await gateway.start_session(name="Ann Smith", phone="+44 7700 900123", place="lab 3",
                                              duration_s=600, device="dev-001")
        await gateway.end_session(session["id"])

        # Sent commands (delivered, resolved; the session's start and end) go too: "resolved" names the operator.
        await wait_for(lambda: gateway.store.count_unsent_commands() == 0, what="commands acknowledged by the broker")
        assert await gateway.purge_expired(time.time()) == \
            {"heartbeats": 0, "messages": 0, "rejects": 0, "commands": 0, "incidents": 0, "sessions": 0,
             "check-in notes": 0, "session alarms": 0, "session alarm audits": 0}
        counts = await gateway.purge_expired(time.time() + 91 * DAY)
        assert counts == {"heartbeats": 1, "messages": 1, "rejects": 0, "commands": 4, "incidents": 1, "sessions": 1,
                          "check-in notes": 0, "session alarms": 0, "session alarm audits": 0}

        assert gateway.store.list_messages() == []
        kept = gateway.store.get_incident(incident["id"])
        assert kept["alarm_id"] == body["id"] and kept["resolution"] == "genuine"  # the record stays
        assert kept["location"] is None and kept["note"] is None
        ended = gateway.store.get_session(session["id"])
        assert (ended["worker"], ended["place"], ended["phone"]) == (None, None, None)
        audit = gateway.store.list_audit(action="retention_purge")
        assert len(audit) == 1 and audit[0]["actor"] == "gateway"
        assert audit[0]["detail"] == ("older than 90 days: 1 messages, 0 rejects, 4 commands, 1 incidents, 1 sessions,"
                                      " 0 check-in notes, 0 session alarms, 0 session alarm audits;"
                                      " heartbeats older than 14 days: 1")
        # The purged alarm id is still known: a very late resend stays a duplicate.
        device.alarm("panic", alarm_id=body["id"])
        await device.wait_command("delivered")
        await device.wait_command("delivered")
        assert len(gateway.store.list_incidents()) == 1
        device.close()


async def test_heartbeats_go_after_their_own_shorter_retention(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        device.heartbeat()
        device.event("check_in", location={"zone": "lab-3"})
        await wait_for(lambda: len(gateway.store.list_messages()) == 2, what="two messages")

        counts = await gateway.purge_expired(time.time() + 15 * DAY)
        assert (counts["heartbeats"], counts["messages"]) == (1, 0)
        assert [m["type"] for m in gateway.store.list_messages()] == ["check_in"]  # personal data: 90 days
        counts = await gateway.purge_expired(time.time() + 91 * DAY)
        assert (counts["heartbeats"], counts["messages"]) == (0, 1)
        device.close()


async def test_a_gateway_back_after_downtime_purges_in_short_transactions(tmp_path, mosquitto, monkeypatch):
    # After a day offline a gateway for 1,000 devices has ~3 million rows to
    # purge at start: in one transaction, the alarms waiting at the broker
    # for the gateway would wait for the purge too.
    monkeypatch.setattr(service, "PURGE_CHUNK_ROWS", 1000)
    config = make_config(tmp_path, mosquitto, devices=REGISTERED)
    store = Store(config.db)
    old = time.time() - 20 * DAY
    with store.transaction():
        for n in range(2500):
            store.add_message(old + n, "hq", "dev-001", "heartbeat", {"v": 1, "device": "dev-001"})
    store.close()
    reader = sqlite3.connect(config.db)  # sees only what is committed
    seen = []

    async def watch():
        while True:
            seen.append(reader.execute("SELECT count(*) FROM messages WHERE kind = 'heartbeat'").fetchone()[0])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    async with running_gateway(config) as gateway:
        await wait_for(lambda: seen[-1] == 0, what="the purge")
        watcher.cancel()
        reader.close()
        audit = gateway.store.list_audit(action="retention_purge")
        assert list(dict.fromkeys(seen)) == [2500, 1500, 500, 0]  # chunk by chunk, the loop free in between
        assert len(audit) == 1  # one entry, its counts brought up to date with every chunk
        assert audit[0]["detail"].endswith("heartbeats older than 14 days: 2500")


async def test_the_names_and_phones_a_session_copied_go_with_it(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices=REGISTERED, sessions={"check_interval_s": 0.1})
    async with running_gateway(config) as gateway:
        session = await gateway.start_session(name="Ann Smith", phone="+44 7700 900123", place="lab 3",
                                              duration_s=0.2, note="alone with the autoclave")
        incident = (await wait_for(gateway.store.list_incidents, what="overdue alarm"))[0]
        await gateway.check_in_session(session["id"], "dave", note="Ann says she is fine")
        await gateway.resolve(incident["id"], "dave", "false_alarm", note="")
        await gateway.end_session(session["id"], "dave")
        assert "Ann Smith" in gateway.store.get_incident(incident["id"])["summary"]
        await wait_for(lambda: gateway.store.count_unsent_commands() == 0, what="commands acknowledged by the broker")

        counts = await gateway.purge_expired(time.time() + 91 * DAY)
        assert (counts["sessions"], counts["check-in notes"], counts["session alarms"],
                counts["session alarm audits"]) == (1, 1, 1, 1)
        assert gateway.store.get_incident(incident["id"])["summary"] == (
            f"OVERDUE: lone-work session {session['id']} on session-{session['id']}"
            " (who and where removed after the retention period)")
        kept = gateway.session(session["id"])
        assert (kept["worker"], kept["phone"], kept["place"], kept["note"]) == (None, None, None, None)
        assert kept["check_in_list"][0]["note"] is None and kept["ended_how"] == "ended_by_desk"
        # Nothing anywhere in the database names her any more, outside the registry.
        gateway.store.db.conn.commit()
        dump = "\n".join(gateway.store.db.conn.iterdump())
        assert "Ann Smith" not in dump and "900123" not in dump and "autoclave" not in dump and "lab 3" not in dump
        assert await gateway.purge_expired(time.time() + 92 * DAY) == dict.fromkeys(counts, 0)
