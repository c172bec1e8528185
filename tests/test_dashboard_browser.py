"""The desk page in a real Chromium: an operator logs in, an alarm appears
without reloading, is acknowledged (the wearer hears help is coming) and
resolved with a reason; a wrong password says so."""

from __future__ import annotations

import os
import shutil

import pytest
from aiohttp import web

from conftest import free_port
from dashboard.app import make_app
from contract.vocabulary import RESOLUTIONS
from gateway.accounts import pbkdf2_hash
from gateway_harness import Device, make_config, running_gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The machine's network is closed: without these Chromium keeps trying to reach Google.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "night shift 42"


def require_chromium():
    if not os.path.exists(CHROMIUM):
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")


@pytest.fixture
async def desk_url(tmp_path, amqtt_broker):
    require_chromium()
    config = make_config(tmp_path, amqtt_broker)
    async with running_gateway(config) as gateway:
        runner = web.AppRunner(make_app(gateway, {"desk": pbkdf2_hash(PASSWORD, iterations=1000)}))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


@pytest.fixture
async def page():
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield await browser.new_page()
        await browser.close()


async def log_in(page, url, password=PASSWORD):
    await page.goto(url + "/")
    await page.fill("input[name=name]", "desk")
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def test_wrong_password_is_shown_on_the_login_page(page, desk_url):
    await log_in(page, desk_url, password="guess")
    await page.wait_for_selector("#failed:not([hidden])")
    assert "Wrong operator name or password" in await page.inner_text("#failed")


async def test_alarm_appears_live_then_is_acknowledged_and_resolved(page, desk_url, amqtt_broker):
    await log_in(page, desk_url)
    await page.wait_for_selector("#link.up")
    assert await page.is_visible("#none-open")

    device = Device(amqtt_broker, "dev-042")
    try:
        alarm = device.alarm("man_down", cause="fall", location={"zone": "cold-room"})
        row = page.locator("#open tbody tr")
        await row.first.wait_for()
        text = await row.first.inner_text()
        assert "MAN DOWN (fall)" in text and "dev-042" in text and "cold-room" in text
        assert await page.inner_text("#open-count") == "1"
        assert (await page.title()).startswith("(1)")

        await row.first.get_by_role("button", name="Acknowledge").click()
        await page.wait_for_function("document.querySelector('#open tbody tr').innerText.includes('acknowledged by desk')")
        assert (await device.wait_command("help_coming")).body["ref"] == alarm["id"]

        await row.first.get_by_role("button", name="Resolve…").click()
        await page.select_option("#resolve-dialog select[name=reason]", "genuine")
        await page.fill("#resolve-dialog textarea[name=note]", "found in the cold room, first aid given")
        await page.click("#resolve-ok")
        resolved = page.locator("#closed tbody tr")
        await resolved.first.wait_for()
        assert RESOLUTIONS["genuine"] in await resolved.first.inner_text()
        assert await page.is_visible("#none-open")
        assert (await device.wait_command("resolved")).body["ref"] == alarm["id"]
    finally:
        device.close()


async def test_a_refused_action_is_explained_on_the_page(page, desk_url):
    await log_in(page, desk_url)
    await page.wait_for_selector("#link.up")
    # What the Acknowledge button does, for an incident the gateway does not have.
    await page.evaluate("act(9999, 'ack').catch(showError)")
    banner = page.locator("#error")
    await banner.wait_for(state="visible")
    text = await banner.inner_text()
    assert text.startswith("Could not do that:") and "9999" in text
