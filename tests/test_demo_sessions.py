"""The demo's wearers work alone (simulator.fleet.LoneWork), against the real
gateway and broker: each starts a session from the wearable with where it is,
checks in by double press and checks out; the forgetful one does neither, is
missed by name and phone when the session runs overdue, feels the notice and
answers it. Sessions here last the protocol's shortest, 60 s; the desk brings
the forgetful one's end forward rather than the test waiting for it."""

from __future__ import annotations

import dataclasses
import time

from gateway_harness import make_config, running_gateway, wait_for
from simulator.fleet import Fleet, LoneWork

QUICK = LoneWork(first_within_s=(0.1, 0.5), duration_s=(60, 60), check_in_s=(0.3, 0.6),
                 checks_out_before_end_s=(57.5, 57.5), break_s=(600, 600), overdue_every=3,
                 answers_overdue_after_s=(0.2, 0.4), leaves_after_answering_s=(0.2, 0.4))


async def test_wearers_check_in_and_out_and_the_forgetful_one_is_missed_by_name(tmp_path, mosquitto):
    fleet = Fleet(mosquitto.url, 3, site="lab", seed=11, incident_every_s=None, lone_work=QUICK,
                  press_window_ms=500)
    config = make_config(tmp_path, mosquitto, devices={"registered": [d.device for d in fleet.devices]})
    async with running_gateway(config) as gateway:
        for n, device in enumerate(fleet.devices):
            await gateway.add_worker(f"Worker {n + 1}", f"+44 7700 900{n + 1:03d}", "", device.device, "test")
        await fleet.start()
        try:
            await wait_for(lambda: len(gateway.sessions()) == 3, timeout=10, what="three sessions started")
            for session in gateway.sessions():
                worn_by = fleet.by_name[session["device"]]
                assert (session["source"], session["worker"]) == ("device", f"Worker {worn_by.device[-1]}")
                assert session["location"] == worn_by.location  # the place is where the wearable says it is

            await wait_for(lambda: sum(s["ended_how"] == "checked_out" for s in gateway.sessions()) == 2,
                           timeout=15, what="two wearers checked out")
            in_time = [s for s in gateway.sessions() if s["state"] == "ended"]
            assert all(s["check_ins"] >= 1 and s["overdue_at"] is None for s in in_time)
            [forgotten] = gateway.sessions("active")
            assert forgotten["check_ins"] == 0

            await gateway.extend_session(forgotten["id"], "desk", until=time.time() + 1)
            overdue = await wait_for(lambda: [i for i in gateway.incidents()
                                              if i["type"] == "overdue" and i["device"] == forgotten["device"]],
                                     timeout=5, what="the overdue alarm")
            assert forgotten["worker"] in overdue[0]["summary"] and forgotten["phone"] in overdue[0]["summary"]

            answered = await wait_for(lambda: (s := gateway.session(forgotten["id"]))["state"] == "ended" and s,
                                      timeout=10, what="the forgetful wearer checked out")
            assert (answered["ended_how"], answered["check_ins"]) == ("checked_out", 1)
            assert answered["overdue_at"] is not None
            assert "session_due" in [p for _, p in fleet.by_name[forgotten["device"]].felt]
        finally:
            await fleet.stop()
        assert gateway.store.list_rejects() == []
        # The overdue incident waits for the desk, whatever the wearer did after.
        assert gateway.incident(overdue[0]["id"])["state"] == "raised"


async def test_when_the_demo_stops_its_wearers_check_out_instead_of_going_missing(tmp_path, mosquitto):
    fleet = Fleet(mosquitto.url, 3, site="lab", seed=12, incident_every_s=None,
                  lone_work=dataclasses.replace(QUICK, checks_out_before_end_s=(5, 5)))
    config = make_config(tmp_path, mosquitto, devices={"registered": [d.device for d in fleet.devices]})
    async with running_gateway(config) as gateway:
        await fleet.start()
        try:
            await wait_for(lambda: len(gateway.sessions("active")) == 3, timeout=10, what="three at work")
        finally:
            await fleet.stop()
        await wait_for(lambda: all(s["state"] == "ended" for s in gateway.sessions()), what="all checked out")
        assert {s["ended_how"] for s in gateway.sessions()} == {"checked_out"}
        await wait_for(lambda: all(d["state"] == "offline" for d in gateway.store.list_devices()),
                       what="switched off")
        assert [i["cause"] for i in gateway.incidents()] == ["offline"] * 3  # not lost during lone work
