"""The demo's simulator page at the desk, over a real gateway, broker and
fleet: it wants the desk's login, refuses another site's posts as the desk
does, lists the simulated wearables and acts on them with the simulator's own
controls (a held button reaches the gateway as a panic). `lonewatch gateway`
has no such page, nor a menu entry for it."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from test_dashboard_desk import PASSWORD, log_in

from conftest import free_port
from gateway.accounts import pbkdf2_hash
from gateway_harness import GatewayProcess, client_for, make_config, running_gateway, wait_for, write_config
from lonewatch.stack import desk_app
from simulator.fleet import Fleet

OPERATORS = {"desk": pbkdf2_hash(PASSWORD, iterations=1000)}


@pytest.fixture
async def demo_desk(tmp_path, amqtt_broker):
    fleet = Fleet(amqtt_broker.url, 2, site="demo", seed=2, incident_every_s=None)
    config = make_config(tmp_path, amqtt_broker, devices={"registered": [d.device for d in fleet.devices]})
    config = dataclasses.replace(config, dashboard=dataclasses.replace(config.dashboard, operators=OPERATORS))
    async with running_gateway(config) as gateway:
        client = await client_for(desk_app(gateway, config, fleet))
        client.gateway, client.fleet = gateway, fleet
        await fleet.start()
        try:
            await wait_for(lambda: fleet.connected() == 2, timeout=10, what="both devices online")
            yield client
        finally:
            await client.close()
            await fleet.stop()


async def test_without_the_desk_login_the_simulator_page_shows_and_does_nothing(demo_desk):
    r = await demo_desk.get("/simulator", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (302, "/login")
    assert (await demo_desk.get("/api/simulator/devices")).status == 401
    assert (await demo_desk.post("/api/simulator/devices/sim-001/hold")).status == 401
    assert (await demo_desk.get("/api/nav")).status == 401
    assert demo_desk.fleet.by_name["sim-001"].felt == []


async def test_a_logged_in_operator_lists_the_wearers_and_makes_one_hold_panic(demo_desk):
    await log_in(demo_desk)
    assert await (await demo_desk.get("/api/nav")).json() == [{"href": "/simulator", "label": "Simulator"}]
    page = await demo_desk.get("/simulator")
    assert page.status == 200 and "Simulated wearables" in await page.text()
    devices = await (await demo_desk.get("/api/simulator/devices")).json()
    assert [(d["device"], d["online"], d["state"]) for d in devices] == [("sim-001", True, "idle"),
                                                                          ("sim-002", True, "idle")]

    r = await demo_desk.post("/api/simulator/devices/sim-001/hold?ms=2300")
    assert r.status == 200
    incident = await wait_for(lambda: demo_desk.gateway.incidents(), timeout=10, what="an incident")
    assert [(i["device"], i["type"]) for i in incident] == [("sim-001", "panic")]


@pytest.mark.parametrize("path, status, error", [
    ("/api/simulator/devices/sim-009/fall", 404, "no device 'sim-009'"),
    ("/api/simulator/devices/sim-001/dance", 400, "unknown action 'dance'"),
    ("/api/simulator/devices/sim-001/presses?n=three", 400, "n must be int"),
    ("/api/simulator/devices/sim-001/press?force=1", 400, "unknown parameter 'force'"),
])
async def test_what_the_simulator_cannot_do_is_refused_with_a_reason(demo_desk, path, status, error):
    await log_in(demo_desk)
    r = await demo_desk.post(path)
    assert r.status == status and error in (await r.json())["error"]


async def test_another_sites_form_cannot_make_a_worker_fall(demo_desk):
    await log_in(demo_desk)
    del demo_desk.session.headers["Origin"]
    r = await demo_desk.post("/api/simulator/devices/sim-001/fall", headers={"Origin": "https://elsewhere.example"})
    assert r.status == 403
    assert demo_desk.fleet.by_name["sim-001"].states.state == "idle"


async def test_lonewatch_gateway_serves_no_simulator_page(tmp_path, amqtt_broker):
    port = free_port()
    path = write_config(tmp_path, amqtt_broker, dashboard={"port": port},
                        extra_toml=f'[dashboard.operators]\ndesk = "{OPERATORS["desk"]}"\n')
    gateway = GatewayProcess(path)
    gateway.start()
    try:
        await gateway.ready()
        base = f"http://127.0.0.1:{port}"
        # unsafe: the jar keeps cookies of a bare IP address such as 127.0.0.1
        async with aiohttp.ClientSession(headers={"Origin": base}, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(base + "/login", data={"name": "desk", "password": PASSWORD},
                                 allow_redirects=False) as r:
                assert r.headers["Location"] == "/"
            async with http.get(base + "/api/nav") as r:
                assert await r.json() == []
            for path in ("/simulator", "/api/simulator/devices"):
                async with http.get(base + path) as r:
                    assert r.status == 404, path
            async with http.post(base + "/api/simulator/devices/sim-001/fall") as r:
                assert r.status == 404
    finally:
        gateway.stop()
