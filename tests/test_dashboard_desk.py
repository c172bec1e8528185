"""The desk's routes over a real gateway, broker, SQLite file and HTTP server:
every route wants a login, a state change wants a page of this desk, bad
input gets a 4xx that says what is wrong, and what the board reads is every
open incident with the worker who wore the device."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime

import pytest

from contract import vocabulary
from dashboard.app import make_app
from gateway import accounts, incidents, people
from gateway.accounts import pbkdf2_hash
from gateway.incidents import Effects
from gateway_harness import Device, client_for, make_config, running_gateway, wait_for

PASSWORD = "correct horse"
ADMIN_PASSWORD = "admin battery staple"

ROUTES = [("GET", "/api/me"), ("GET", "/api/incidents"), ("GET", "/api/incidents.csv"),
          ("GET", "/api/incidents/1"), ("POST", "/api/incidents/1/ack"), ("POST", "/api/incidents/1/resolve"),
          ("GET", "/api/devices"), ("POST", "/api/devices/dev-001/assign"), ("GET", "/api/workers"),
          ("POST", "/api/workers"), ("POST", "/api/workers/1"), ("GET", "/ws")]
PAGES = ["/", "/devices", "/history", "/incident/1"]


@pytest.fixture
async def desk(tmp_path, amqtt_broker):
    config = make_config(tmp_path, amqtt_broker)
    async with running_gateway(config) as gateway:
        with gateway.store.transaction():
            accounts.add_user(gateway.store, "ada", "admin", ADMIN_PASSWORD, time.time(), "test")
        client = await client_for(make_app(gateway, {"desk": pbkdf2_hash(PASSWORD, iterations=1000)}))
        client.gateway = gateway
        try:
            yield client
        finally:
            await client.close()


async def log_in(client, name="desk", password=PASSWORD):
    return await client.post("/login", data={"name": name, "password": password}, allow_redirects=False)


def raise_alarms(gateway, n: int, alarm_type="panic", cause=None, start: float | None = None, **extra) -> list[int]:
    """n incidents on n devices, one second apart from start, straight into the store."""
    start = time.time() - n if start is None else start
    ids = []
    with gateway.store.transaction():
        for k in range(n):
            ids.append(incidents.raise_alarm(gateway.store, Effects(), site="hq", device=f"bulk-{alarm_type}-{k}",
                                             alarm_type=alarm_type, cause=cause, now=start + k, **extra))
    return ids


async def test_every_page_and_route_needs_a_login(desk):
    for path in PAGES:
        response = await desk.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, "/login"), path
    for method, path in ROUTES:
        response = await desk.request(method, path)
        assert response.status == 401, (method, path)
        assert (await response.json())["error"] == "log in first"
    logout = await desk.post("/logout", allow_redirects=False)
    assert (logout.status, logout.headers["Location"]) == (302, "/login")
    assert (await desk.get("/healthz")).status == 200
    assert "# TYPE" in await (await desk.get("/metrics")).text()


async def test_a_state_change_from_another_site_is_refused(desk):
    assert (await log_in(desk)).headers["Location"] == "/"
    [incident_id] = raise_alarms(desk.gateway, 1)
    for headers in ({"Origin": "http://evil.example"}, {"Origin": ""}):
        refused = await desk.post(f"/api/incidents/{incident_id}/ack", headers=headers)
        assert refused.status == 403 and "Origin check" in (await refused.json())["error"]
    # No Origin at all: only a browser's own word that the request is same-origin lets it through.
    del desk.session.headers["Origin"]
    assert (await desk.post(f"/api/incidents/{incident_id}/ack")).status == 403
    login_elsewhere = await desk.post("/login", data={"name": "desk", "password": PASSWORD},
                                      headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert login_elsewhere.status == 403
    socket = await desk.get("/ws", headers={"Origin": "http://evil.example"})
    assert socket.status == 403
    same = await desk.post(f"/api/incidents/{incident_id}/ack", headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status == 200
    assert desk.gateway.store.get_incident(incident_id)["state"] == "acknowledged"


async def test_the_session_cookie_and_its_end(desk):
    response = await log_in(desk)
    cookie = response.cookies["lonewatch_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert await (await desk.get("/api/me")).json() == {"name": "desk", "role": "operator"}

    ws = await desk.ws_connect("/ws")
    await ws.receive_json()
    assert (await desk.post("/logout", allow_redirects=False)).headers["Location"] == "/login"
    closed = await ws.receive(timeout=5)
    assert closed.extra == "logged out"
    # The same cookie again, as a copy kept by someone else would be: revoked.
    desk.session.cookie_jar.update_cookies({"lonewatch_session": cookie.value})
    assert (await desk.get("/api/me")).status == 401
    audit = [(a["actor"], a["action"]) for a in desk.gateway.store.list_audit()]
    assert ("desk", "login") in audit and ("desk", "logout") in audit


async def test_an_idle_session_ends_unless_a_live_page_is_open(desk):
    from dashboard.app import SESSIONS
    from dashboard.auth import IDLE_S

    await log_in(desk)
    sessions = desk.server.app[SESSIONS]
    [session] = sessions._by_token.values()
    ws = await desk.ws_connect("/ws")
    await ws.receive_json()
    session.last_seen -= IDLE_S + 1
    assert (await desk.get("/api/me")).status == 200  # the board is watching
    await ws.close()
    session.last_seen -= IDLE_S + 1
    assert (await desk.get("/api/me")).status == 401


async def test_database_users_log_in_with_their_role_and_a_disabled_one_cannot(desk):
    response = await log_in(desk, "ada", ADMIN_PASSWORD)
    assert response.headers["Location"] == "/"
    assert await (await desk.get("/api/me")).json() == {"name": "ada", "role": "admin"}
    with desk.gateway.store.transaction():
        accounts.disable_user(desk.gateway.store, "ada", time.time(), "test")
    desk.session.cookie_jar.clear()
    assert (await log_in(desk, "ada", ADMIN_PASSWORD)).headers["Location"] == "/login?failed=1"
    failed = desk.gateway.store.list_audit(action="login_failed")
    assert "account disabled" in failed[0]["detail"]


async def test_every_open_incident_is_on_the_board_most_urgent_then_longest_waiting(desk):
    await log_in(desk)
    gateway = desk.gateway
    start = time.time() - 10_000
    technical = raise_alarms(gateway, 30, "technical", "low_battery", start=start)
    panics = raise_alarms(gateway, 220, "panic", start=start + 100)
    resolved = raise_alarms(gateway, 300, "man_down", "fall", start=start + 1000)
    for incident_id in resolved:
        await gateway.resolve(incident_id, "desk", "test")

    board = await (await desk.get("/api/incidents", params={"state": "open"})).json()
    assert [i["id"] for i in board] == panics + technical
    assert all(i["worker"] is None for i in board)

    ws = await desk.ws_connect("/ws")
    snapshot = await ws.receive_json()
    assert [i["id"] for i in snapshot["incidents"]] == panics + technical
    assert [i["id"] for i in snapshot["recent"]] == resolved[::-1][:20]
    assert (snapshot["operator"], snapshot["role"], snapshot["vocabulary"]) == \
           ("desk", "operator", vocabulary.for_the_page())
    await ws.close()


async def test_alarm_live_with_its_worker_then_acknowledged_and_resolved(desk, amqtt_broker):
    await log_in(desk)
    with desk.gateway.store.transaction():
        people.add_worker(desk.gateway.store, "Ann Smith", "+44 7700 900123", "diabetic", "dev-007",
                          time.time(), "test")
    ws = await desk.ws_connect("/ws")
    await ws.receive_json()
    device = Device(amqtt_broker, "dev-007")
    try:
        alarm = device.alarm("panic")
        update = await ws.receive_json(timeout=5)
        incident = update["incident"]
        assert (update["type"], incident["alarm_id"], incident["state"]) == ("incident", alarm["id"], "raised")
        assert incident["worker"]["name"] == "Ann Smith" and incident["worker"]["phone"] == "+44 7700 900123"
        [on_board] = await (await desk.get("/api/incidents?state=open")).json()
        assert on_board["worker"] == {"id": incident["worker"]["id"], "name": "Ann Smith",
                                      "phone": "+44 7700 900123", "note": "diabetic"}

        acked = await desk.post(f"/api/incidents/{incident['id']}/ack")
        assert acked.status == 200
        assert ((await acked.json())["state"], (await acked.json())["acknowledged_by"]) == ("acknowledged", "desk")
        assert (await device.wait_command("help_coming")).body["ref"] == alarm["id"]

        bad = await desk.post(f"/api/incidents/{incident['id']}/resolve", json={"reason": "bored"})
        assert bad.status == 400
        assert (await bad.json())["error"] == "reason must be one of genuine, false_alarm, test, other"
        long_note = await desk.post(f"/api/incidents/{incident['id']}/resolve", json={"reason": "test", "note": "x" * 5000})
        assert long_note.status == 400 and "2000" in (await long_note.json())["error"]
        resolved = await desk.post(f"/api/incidents/{incident['id']}/resolve", json={"reason": "test", "note": "drill"})
        assert (await resolved.json())["state"] == "resolved"
        assert (await device.wait_command("resolved")).body["ref"] == alarm["id"]
    finally:
        device.close()
        await ws.close()


async def test_a_second_operators_action_is_explained_not_overwritten(desk):
    await log_in(desk)
    [incident_id] = raise_alarms(desk.gateway, 1)
    await desk.gateway.acknowledge(incident_id, "bob")
    late = await desk.post(f"/api/incidents/{incident_id}/ack")
    body = await late.json()
    assert late.status == 409
    assert body["error"].startswith(f"Incident {incident_id} was not acknowledged by you: bob acknowledged it at ")
    assert body["incident"]["acknowledged_by"] == "bob"
    await desk.gateway.resolve(incident_id, "bob", "false_alarm", "pocket")
    late = await desk.post(f"/api/incidents/{incident_id}/resolve", json={"reason": "genuine"})
    assert late.status == 409 and "bob resolved it at" in (await late.json())["error"]
    assert "False alarm" in (await late.json())["error"]
    assert desk.gateway.store.get_incident(incident_id)["resolution"] == "false_alarm"


async def test_unknown_incident_and_bad_ids_get_clear_errors(desk):
    await log_in(desk)
    missing = await desk.post("/api/incidents/9999/ack")
    assert missing.status == 409 and "9999" in (await missing.json())["error"]
    word = await desk.post("/api/incidents/abc/ack")
    assert word.status == 400 and (await word.json())["error"] == "incident id must be a number"
    not_json = await desk.post("/api/incidents/1/resolve", data="{", headers={"Content-Type": "application/json"})
    assert not_json.status == 400 and (await not_json.json())["error"] == "body is not JSON"
    assert (await desk.get("/api/incidents/9999")).status == 404
    assert (await desk.get("/api/incidents/abc")).status == 400


@pytest.mark.parametrize("query, message", [
    ("state=lost", "state must be one of open, raised, acknowledged, resolved"),
    ("type=fire", "type must be one of panic, man_down, overdue, technical"),
    ("from=yesterday", "from must be a date (2025-03-01)"),
    ("to=2025-13-01", "to must be a date"),
    ("worker=ann", "worker must be a worker's id"),
    ("page=0", "page must be a whole number from 1"),
    ("per_page=9999", "per_page must be a whole number from 1 to 500"),
])
async def test_bad_history_filters_are_explained(desk, query, message):
    await log_in(desk)
    for path in ("/api/incidents", "/api/incidents.csv"):
        response = await desk.get(f"{path}?{query}")
        if "page" in query and path.endswith(".csv"):
            continue  # the CSV has no pages
        assert response.status == 400 and message in (await response.json())["error"], path


async def test_history_filters_pages_and_names_who_wore_the_device_then(desk):
    await log_in(desk)
    gateway = desk.gateway
    now = time.time()
    with gateway.store.transaction():
        ann = people.add_worker(gateway.store, "Ann", "555 0101", "", "bulk-panic-0", now - 5000, "test")
        bob = people.add_worker(gateway.store, "Bob", "555 0102", "", None, now - 5000, "test")
    anns = raise_alarms(gateway, 3, "panic", start=now - 4000)  # bulk-panic-0 raised while Ann wore it
    await gateway.resolve(anns[0], "desk", "test")
    with gateway.store.transaction():
        people.assign(gateway.store, bob["id"], "bulk-panic-0", now - 3000, "test")
    with gateway.store.transaction():
        later = incidents.raise_alarm(gateway.store, Effects(), site="hq", device="bulk-panic-0",
                                      alarm_type="man_down", cause="fall", now=now - 2000)
    raise_alarms(gateway, 2, "technical", "offline", start=now - 1000)

    page = await desk.get("/api/incidents", params={"per_page": "2", "page": "2"})
    assert page.headers["X-Total-Count"] == "6" and len(await page.json()) == 2
    by_worker = await (await desk.get("/api/incidents", params={"worker": str(ann["id"])})).json()
    assert [(i["device"], i["type"], i["worker"]["name"]) for i in by_worker] == [("bulk-panic-0", "panic", "Ann")]
    bobs = await (await desk.get("/api/incidents", params={"worker": str(bob["id"])})).json()
    assert [i["id"] for i in bobs] == [later]
    typed = await desk.get("/api/incidents", params={"type": "technical", "state": "raised"})
    assert typed.headers["X-Total-Count"] == "2"
    day = datetime.fromtimestamp(now - 2000).date().isoformat()
    dated = await desk.get("/api/incidents", params={"from": day, "to": day, "device": "bulk-panic-0"})
    assert {i["id"] for i in await dated.json()} <= {later, by_worker[0]["id"]}
    assert later in {i["id"] for i in await dated.json()}
    none = await desk.get("/api/incidents", params={"from": "2001-01-01", "to": "2001-01-31"})
    assert none.headers["X-Total-Count"] == "0"


async def test_the_csv_has_the_same_filters_local_times_and_no_formulas(desk):
    await log_in(desk)
    gateway = desk.gateway
    with gateway.store.transaction():
        people.add_worker(gateway.store, "=HYPERLINK(\"x\")", "+44 20 7946 0000", "", "bulk-panic-0",
                          time.time() - 100, "test")
    [first, _] = raise_alarms(gateway, 2, "panic", start=time.time() - 50)
    raise_alarms(gateway, 1, "technical", "offline")
    response = await desk.get("/api/incidents.csv", params={"type": "panic"})
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    text = (await response.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [first, first + 1]
    raised = datetime.fromisoformat(rows[0]["raised"])
    assert raised.utcoffset() is not None
    assert abs(raised.timestamp() - gateway.store.get_incident(first)["raised_at"]) < 1
    assert rows[0]["worker"] == "'=HYPERLINK(\"x\")" and rows[0]["phone"] == "+44 20 7946 0000"
    assert rows[1]["worker"] == "UNASSIGNED"


async def test_the_csv_names_whom_a_lone_work_session_names(desk):
    await log_in(desk)
    await desk.gateway.start_session(name="Bob Jones", phone="0161 496 0000", place="cellar", duration_s=1)
    await wait_for(desk.gateway.store.list_incidents, what="the overdue alarm")
    response = await desk.get("/api/incidents.csv", params={"type": "overdue"})
    rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert [(r["worker"], r["phone"]) for r in rows] == [("Bob Jones", "0161 496 0000")]


async def test_an_incident_page_has_its_timeline_and_messages(desk, amqtt_broker):
    await log_in(desk)
    device = Device(amqtt_broker, "dev-009")
    try:
        alarm = device.alarm("man_down", cause="fall", location={"zone": "cold-room"})
        await device.wait_command("delivered")
        [incident] = await (await desk.get("/api/incidents?state=open")).json()
        await desk.post(f"/api/incidents/{incident['id']}/ack")
        detail = await (await desk.get(f"/api/incidents/{incident['id']}")).json()
    finally:
        device.close()
    assert detail["incident"]["location"] == {"zone": "cold-room"}
    assert [a["action"] for a in detail["audit"]][:1] == ["raised"]
    assert {"delivered", "acknowledged"} <= {a["action"] for a in detail["audit"]}
    [message] = detail["messages"]
    assert message["msg_id"] == alarm["id"] and message["body"]["type"] == "man_down"
    assert {"received_at", "event_time", "device_time", "skew_s"} <= set(message)
    assert detail["failed_notifications"] == []


async def test_devices_workers_and_enrolling_an_unknown_device(desk, amqtt_broker):
    await log_in(desk, "ada", ADMIN_PASSWORD)
    device = Device(amqtt_broker, "dev-stray")
    try:
        device.heartbeat(battery_pct=55)
        await wait_for(lambda: desk.gateway.store.get_device("dev-stray"), what="device seen")
    finally:
        device.close()
    [stray] = [d for d in await (await desk.get("/api/devices")).json() if d["device"] == "dev-stray"]
    assert (stray["registered"], stray["battery_pct"], stray["worker"]) == (False, 55, None)
    assert {"state", "last_seen", "fw", "open_incidents"} <= set(stray)

    bad = await desk.post("/api/workers", json={"name": "Cy", "phone": "call me"})
    assert bad.status == 400 and "phone must be a number" in (await bad.json())["error"]
    created = await desk.post("/api/workers", json={"name": "Cy Young", "phone": "555 0199", "note": "deaf: text"})
    assert created.status == 201
    worker = await created.json()
    assert (await desk.post("/api/devices/dev-stray/assign", json={"worker": "x"})).status == 400
    assert (await desk.post("/api/devices/dev-stray/assign", json={"worker": 999})).status == 400
    assigned = await desk.post("/api/devices/dev-stray/assign", json={"worker": worker["id"]})
    body = await assigned.json()
    assert body["registered"] is True and body["worker"]["name"] == "Cy Young"
    assert [w["device"] for w in await (await desk.get("/api/workers")).json()] == ["dev-stray"]
    changed = await desk.post(f"/api/workers/{worker['id']}", json={"phone": "555 0200"})
    assert (await changed.json())["phone"] == "555 0200"
    assert (await desk.post(f"/api/workers/{worker['id']}", json={"phone": ""})).status == 400


async def test_the_devices_page_counts_each_wearers_pre_alarms_of_the_last_day(desk, amqtt_broker):
    await log_in(desk)
    store = desk.gateway.store
    with store.transaction():
        people.add_worker(store, "Ann Smith", "+44 7700 900123", "", "dev-042", time.time(), "test")
        store.audit(time.time() - 2 * 86400, "dev-042", "pre_alarm_started", "cause fall")  # not counted
    device = Device(amqtt_broker, "dev-042")
    try:
        device.heartbeat()
        for event_type, cause in (("pre_alarm_started", "tilt"), ("pre_alarm_cancelled", "tilt"),
                                  ("pre_alarm_started", "fall")):
            device.event(event_type, cause=cause, **({"countdown_s": 20} if event_type.endswith("started") else {}))
        await wait_for(lambda: len([a for a in store.list_audit() if a["actor"] == "dev-042"
                                    and a["action"].startswith("pre_alarm")]) == 4,
                       what="the pre-alarm events recorded")
    finally:
        device.close()
    devices = {d["device"]: d for d in await (await desk.get("/api/devices")).json()}
    assert (devices["dev-042"]["prealarms"], devices["dev-042"]["prealarms_cancelled"]) == (2, 1)
    assert all((d["prealarms"], d["prealarms_cancelled"]) == (0, 0) for name, d in devices.items() if name != "dev-042")


async def test_only_an_admin_changes_workers_and_devices(desk):
    await log_in(desk)
    for path, body in (("/api/workers", {"name": "Cy", "phone": "555 0199"}),
                       ("/api/devices/dev-001/assign", {"worker": None}), ("/api/workers/1", {"phone": "1"})):
        response = await desk.post(path, json=body)
        assert response.status == 403 and (await response.json())["error"] == "only an admin may do this"
