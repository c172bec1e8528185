"""The desk's lone-work routes over a real gateway, broker and SQLite file:
register, extend, check in, check out, the active list and the history CSV;
bad input gets a 400 or 409 that says what is wrong."""

from __future__ import annotations

import csv
import io

import pytest
from test_dashboard_desk import PASSWORD, log_in

from dashboard.app import make_app
from gateway.accounts import pbkdf2_hash
from gateway_harness import client_for, make_config, running_gateway


@pytest.fixture
async def desk(tmp_path, amqtt_broker):
    config = make_config(tmp_path, amqtt_broker, devices={"registered": ["dev-001"]},
                         sessions={"max_duration_s": 7200, "reminder_before_s": 45})
    async with running_gateway(config) as gateway:
        client = await client_for(make_app(gateway, {"desk": pbkdf2_hash(PASSWORD, iterations=1000)}))
        client.gateway = gateway
        await log_in(client)
        try:
            yield client
        finally:
            await client.close()


async def test_register_extend_check_in_and_check_out(desk):
    ann = await desk.gateway.add_worker("Ann Smith", "+44 7700 900123", "", "dev-001", "admin")
    r = await desk.post("/api/sessions", json={"worker_id": ann["id"], "place": "boiler room", "duration_s": 3600,
                                               "note": "valve job"})
    assert r.status == 201
    session = await r.json()
    assert (session["worker"], session["phone"], session["device"], session["state"]) == \
        ("Ann Smith", "+44 7700 900123", "dev-001", "active")
    assert [s["id"] for s in await (await desk.get("/api/sessions?state=active")).json()] == [session["id"]]

    r = await desk.post(f"/api/sessions/{session['id']}/extend", json={"duration_s": 600})
    assert r.status == 200 and abs((await r.json())["ends_at"] - session["ends_at"] - 600) < 0.01
    r = await desk.post(f"/api/sessions/{session['id']}/check-in", json={"note": "phoned: fine"})
    assert (await r.json())["check_ins"] == 1
    r = await desk.post(f"/api/sessions/{session['id']}/end")
    ended = await r.json()
    assert (ended["state"], ended["ended_how"], ended["ended_by"]) == ("ended", "ended_by_desk", "desk")
    assert await (await desk.get("/api/sessions?state=active")).json() == []
    assert (await desk.post(f"/api/sessions/{session['id']}/end")).status == 409

    r = await desk.get("/api/sessions.csv")
    rows = list(csv.DictReader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    assert [(row["worker"], row["place"], row["check_ins"], row["how_ended"]) for row in rows] == \
        [("Ann Smith", "boiler room", "1", "ended by the desk")]
    history = await desk.get("/api/sessions?state=ended")
    assert history.headers["X-Total-Count"] == "1"
    detail = await (await desk.get(f"/api/sessions/{session['id']}")).json()
    assert [c["note"] for c in detail["check_in_list"]] == ["phoned: fine"]


async def test_the_page_learns_the_reminder_window_from_the_gateway(desk):
    r = await desk.get("/api/sessions/settings")
    assert await r.json() == {"reminder_before_s": 45.0}


@pytest.mark.parametrize("body, status, message", [
    ({"name": "Ann", "phone": "123 456", "place": "roof", "duration_s": 0}, 400, "more than 0"),
    ({"name": "Ann", "phone": "123 456", "place": "roof", "duration_s": 7201}, 400, "at most 2 h"),
    ({"worker_id": 42, "place": "roof", "duration_s": 60}, 400, "no worker with id 42"),
    ({"name": "Ann", "phone": "123 456", "place": "roof", "duration_s": 60, "device": "dev-404"}, 400,
     "unknown device 'dev-404'"),
    ({"name": "Ann", "place": "roof", "duration_s": 60}, 400, "phone must be"),
    ({"name": "Ann", "phone": "123 456", "place": "roof"}, 400, "either duration_s"),
    ({"name": "Ann", "phone": "123 456", "place": "roof", "duration_s": 60, "colour": "red"}, 400, "unknown field"),
])
async def test_bad_registrations_say_what_is_wrong(desk, body, status, message):
    r = await desk.post("/api/sessions", json=body)
    assert r.status == status
    assert message in (await r.json())["error"]


async def test_a_device_already_in_a_session_is_a_conflict(desk):
    body = {"name": "Ann", "phone": "123 456", "place": "roof", "duration_s": 60, "device": "dev-001"}
    assert (await desk.post("/api/sessions", json=body)).status == 201
    r = await desk.post("/api/sessions", json={**body, "name": "Bob"})
    assert r.status == 409 and "already in a lone-work session" in (await r.json())["error"]
    assert (await desk.post("/api/sessions/999/extend", json={"duration_s": 60})).status == 400
    assert (await desk.post("/api/sessions/abc/end")).status == 400


async def test_the_session_routes_want_a_login_and_a_page_of_this_desk(desk):
    desk.session.cookie_jar.clear()
    assert (await desk.get("/api/sessions?state=active")).status == 401
    assert (await desk.get("/api/sessions/settings")).status == 401
    await log_in(desk)
    del desk.session.headers["Origin"]
    r = await desk.post("/api/sessions", json={"name": "Ann", "phone": "123 456", "place": "roof", "duration_s": 60},
                        headers={"Origin": "https://elsewhere.example"})
    assert r.status == 403
