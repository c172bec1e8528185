"""The desk's first page over a real gateway, broker and HTTP server: log in,
see an alarm arrive live, acknowledge it (the wearer is told help is coming),
resolve it; bad logins and bad form fields get clear errors."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contract import vocabulary
from dashboard.app import make_app
from gateway.accounts import hash_password
from gateway_harness import Device, make_config, running_gateway

PASSWORD = "correct horse"


@pytest.fixture
async def desk(tmp_path, amqtt_broker):
    config = make_config(tmp_path, amqtt_broker)
    async with running_gateway(config) as gateway:
        app = make_app(gateway, {"desk": hash_password(PASSWORD, iterations=1000)})
        async with TestClient(TestServer(app)) as client:
            client.gateway = gateway
            yield client


async def log_in(client, name="desk", password=PASSWORD):
    return await client.post("/login", data={"name": name, "password": password}, allow_redirects=False)


async def test_pages_and_api_need_a_login(desk):
    page = await desk.get("/", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/login"
    api = await desk.get("/api/incidents")
    assert api.status == 401 and (await api.json())["error"] == "log in first"
    assert (await desk.get("/healthz")).status == 200


async def test_wrong_password_is_refused_and_logged(desk, caplog):
    response = await log_in(desk, password="guess")
    assert response.headers["Location"] == "/login?failed=1"
    assert (await desk.get("/api/incidents")).status == 401
    assert "failed login for operator 'desk'" in caplog.text


async def test_alarm_arrives_live_then_acknowledge_and_resolve(desk, amqtt_broker):
    assert (await log_in(desk)).headers["Location"] == "/"
    ws = await desk.ws_connect("/ws")
    snapshot = await ws.receive_json()
    assert snapshot == {"type": "snapshot", "incidents": [], "operator": "desk", "vocabulary": vocabulary.for_the_page()}

    device = Device(amqtt_broker, "dev-007")
    try:
        alarm = device.alarm("panic")
        update = await ws.receive_json(timeout=5)
        incident = update["incident"]
        assert (update["type"], incident["alarm_id"], incident["state"]) == ("incident", alarm["id"], "raised")

        acked = await desk.post(f"/api/incidents/{incident['id']}/ack")
        assert acked.status == 200
        body = await acked.json()
        assert (body["state"], body["acknowledged_by"]) == ("acknowledged", "desk")
        help_coming = await device.wait_command("help_coming")
        assert help_coming.body["ref"] == alarm["id"]

        again = await desk.post(f"/api/incidents/{incident['id']}/ack")
        assert again.status == 409 and "error" in await again.json()

        bad = await desk.post(f"/api/incidents/{incident['id']}/resolve", json={"reason": "bored"})
        assert bad.status == 400
        assert (await bad.json())["error"] == "reason must be one of genuine, false_alarm, test, other"
        long_note = await desk.post(f"/api/incidents/{incident['id']}/resolve",
                                    json={"reason": "test", "note": "x" * 5000})
        assert long_note.status == 400

        resolved = await desk.post(f"/api/incidents/{incident['id']}/resolve",
                                   json={"reason": "test", "note": "drill"})
        assert (await resolved.json())["state"] == "resolved"
        assert (await device.wait_command("resolved")).body["ref"] == alarm["id"]
    finally:
        device.close()
        await ws.close()


async def test_unknown_incident_and_bad_ids_get_clear_errors(desk):
    await log_in(desk)
    missing = await desk.post("/api/incidents/9999/ack")
    assert missing.status == 409 and "9999" in (await missing.json())["error"]
    word = await desk.post("/api/incidents/abc/ack")
    assert word.status == 400
    not_json = await desk.post("/api/incidents/1/resolve", data="{", headers={"Content-Type": "application/json"})
    assert not_json.status == 400


async def test_metrics_are_prometheus_text(desk):
    text = await (await desk.get("/metrics")).text()
    assert "# TYPE" in text
    json.loads(await (await desk.get("/healthz")).text())
