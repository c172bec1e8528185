"""Logging in to the desk: slow hashes checked off the event loop, wrong
guesses throttled per address and per name, unknown names answered as slowly
as known ones, every outcome audited; and a flood of logins does not delay
an overdue alarm."""

from __future__ import annotations

import asyncio
import time

import pytest

from dashboard import auth
from dashboard.app import make_app
from gateway import accounts
from gateway.accounts import pbkdf2_hash
from gateway_harness import Device, client_for, make_config, next_live, running_gateway, wait_for
from test_dashboard_desk import PASSWORD


@pytest.fixture
async def desk(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]},
                         sessions={"check_interval_s": 0.1, "reminder_before_s": 1.0})
    async with running_gateway(config) as gateway:
        with gateway.store.transaction():
            accounts.add_user(gateway.store, "ada", "operator", PASSWORD, time.time(), "test")
        client = await client_for(make_app(gateway, {"old-timer": pbkdf2_hash(PASSWORD, iterations=1000)}))
        client.gateway = gateway
        try:
            yield client
        finally:
            await client.close()


async def log_in(client, name, password):
    response = await client.post("/login", data={"name": name, "password": password}, allow_redirects=False)
    return response.headers["Location"]


async def test_a_pbkdf2_operator_from_the_toml_config_still_logs_in(desk):
    assert await log_in(desk, "old-timer", PASSWORD) == "/"
    assert await (await desk.get("/api/me")).json() == {"name": "old-timer", "role": "operator"}


async def test_wrong_guesses_are_throttled_per_name_and_per_address(desk, caplog):
    for _ in range(auth.FREE_FAILURES):
        assert await log_in(desk, "ada", "guess") == "/login?failed=1"
    assert "failed login for operator 'ada'" in caplog.text
    # Now even the right password waits: the guesser must not learn it is right.
    assert (await log_in(desk, "ada", PASSWORD)).startswith("/login?wait=")
    # The same address trying another name waits too.
    assert (await log_in(desk, "old-timer", PASSWORD)).startswith("/login?wait=")
    audit = desk.gateway.store.list_audit()
    assert [a["action"] for a in audit].count("login_failed") == auth.FREE_FAILURES
    assert [a["action"] for a in audit].count("login_throttled") == 1
    assert all(a["action"] != "login" for a in audit)


def test_the_wait_doubles_and_is_forgotten_after_a_success():
    throttle = auth.Throttle()
    keys = [("name", "ada")]
    for n in range(auth.FREE_FAILURES):
        assert throttle.wait_s(keys, 100.0 + n) == 0
        throttle.failed(keys, 100.0 + n)
    last = 100.0 + auth.FREE_FAILURES - 1
    assert throttle.wait_s(keys, last) == 1.0
    throttle.failed(keys, last + 1)
    assert throttle.wait_s(keys, last + 1) == 2.0
    throttle.succeeded(keys)
    assert throttle.wait_s(keys, last + 1) == 0


async def test_an_unknown_name_takes_as_long_as_a_wrong_password(desk, monkeypatch):
    monkeypatch.setattr(auth, "FREE_FAILURES", 1000)

    async def fastest(name):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            await log_in(desk, name, "wrong password")
            times.append(time.perf_counter() - start)
        return min(times)

    known, unknown = await fastest("ada"), await fastest("nobody-here")
    assert unknown > 0.6 * known, (known, unknown)


async def test_a_login_flood_does_not_delay_an_overdue_alarm(desk, mosquitto, monkeypatch):
    # As if the flood came from many addresses: the throttle does not stop it.
    monkeypatch.setattr(auth, "FREE_FAILURES", 10**6)
    gateway = desk.gateway
    device = Device(mosquitto)
    device.heartbeat()
    await wait_for(lambda: gateway.store.get_device("dev-001")["state"] == "online", what="device online")
    live = gateway.subscribe_live()
    due = time.time() + 2.0
    await gateway.start_session(name="Ann Smith", phone="+44 7700 900123", place="boiler room", until=due,
                                device="dev-001")

    answered = []

    async def guesser(n):
        while time.time() < due + 5:
            answered.append(await log_in(desk, f"guess-{n}", "hunter2 or so"))

    flood = [asyncio.create_task(guesser(n)) for n in range(16)]
    try:
        update = await next_live(live, lambda u: u["type"] == "incident" and u["incident"]["type"] == "overdue",
                                 timeout=8)
        seen = time.time()
    finally:
        for task in flood:
            task.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        device.close()
    assert update["incident"]["raised_at"] - due < 5.0
    assert seen - due < 5.0
    assert len(answered) >= 10 and set(answered) <= {"/login?failed=1", "/login?busy=1"}
    assert "/login?failed=1" in answered
