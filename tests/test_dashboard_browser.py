"""The desk in a real Chromium over a real gateway and broker: an alarm comes
in with the worker's name and sounds until acknowledged (the wearer hears
help is coming), is resolved and found in history and the CSV; the page
shows at once when its live link drops and catches up by itself; a second
operator's action is explained; markup in names stays text; a phone gets the
board without sideways scrolling. Screenshots go to test-output/ (not committed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time

import pytest
from aiohttp import web

from conftest import ROOT, free_port
from dashboard.app import make_app
from contract.vocabulary import RESOLUTIONS
from gateway import people
from gateway.accounts import pbkdf2_hash
from gateway_harness import Device, make_config, running_gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The machine's network is closed: without these Chromium keeps trying to reach Google.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "night shift 42"
SHOTS = ROOT / "test-output"
DESK = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
MARKUP = "<img src=x onerror=alert(1)>"


def require_chromium():
    if not os.path.exists(CHROMIUM):
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")


class Desk:
    def __init__(self, gateway, runner, port):
        self.gateway, self.runner, self.port = gateway, runner, port
        self.url = f"http://127.0.0.1:{port}"
        self.site = None

    async def serve(self):
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await self.site.start()

    async def cut(self):
        """The web server goes away as in a crash: every live page loses its link."""
        from dashboard.app import SOCKETS

        await self.site.stop()
        for ws in list(self.runner.app[SOCKETS]):
            await ws.close()

    def worker(self, name, phone, device):
        with self.gateway.store.transaction():
            return people.add_worker(self.gateway.store, name, phone, "", device, time.time(), "test")


@contextlib.asynccontextmanager
async def served_desk(tmp_path, broker, **settings):
    """A gateway configured with `settings` (gateway_harness.make_config) and
    its desk served over HTTP for a real browser, operators desk and bob."""
    require_chromium()
    config = make_config(tmp_path, broker, **settings)
    async with running_gateway(config) as gateway:
        runner = web.AppRunner(make_app(gateway, {"desk": pbkdf2_hash(PASSWORD, iterations=1000),
                                                  "bob": pbkdf2_hash(PASSWORD, iterations=1000)}))
        await runner.setup()
        desk = Desk(gateway, runner, free_port())
        await desk.serve()
        try:
            yield desk
        finally:
            await runner.cleanup()


@pytest.fixture
async def desk(tmp_path, amqtt_broker):
    async with served_desk(tmp_path, amqtt_broker) as served:
        yield served


@pytest.fixture
async def browser():
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser):
    context = await browser.new_context(viewport=DESK)
    page = await context.new_page()
    page.alerts = []
    page.on("dialog", lambda d: (page.alerts.append(d.message), d.dismiss()))
    yield page
    await context.close()


async def log_in(page, url, name="desk", password=PASSWORD):
    await page.goto(url + "/")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def shot(page, name):
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / name), full_page=True)


async def test_wrong_password_is_shown_on_the_login_page(page, desk):
    await log_in(page, desk.url, password="guess")
    await page.wait_for_selector("#failed:not([hidden])")
    assert "Wrong operator name or password" in await page.inner_text("#failed")


async def test_an_alarm_sounds_with_the_workers_name_until_acknowledged_then_history_and_csv(page, desk, amqtt_broker):
    desk.worker("Ann Smith", "+44 7700 900123", "dev-042")
    await log_in(page, desk.url)
    await page.wait_for_selector("#link.up")
    assert await page.is_visible("#sound-blocked") and "Click to enable sound" in await page.inner_text("#sound-enable")
    await page.click("#sound-enable")
    await page.wait_for_function("desk.soundEnabled")
    assert await page.is_hidden("#sound-blocked")
    assert await page.is_visible("#none-open")

    device = Device(amqtt_broker, "dev-042")
    try:
        alarm = device.alarm("man_down", cause="fall", location={"zone": "cold-room"})
        card = page.locator("#open .card").first
        await card.wait_for()
        text = await card.inner_text()
        assert "MAN DOWN (fall)" in text and "Ann Smith" in text and "+44 7700 900123" in text
        assert "dev-042" in text and "cold-room" in text and "NOT ACKNOWLEDGED" in text
        assert await card.locator("a.phone").get_attribute("href") == "tel:+447700900123"
        assert await page.inner_text("#open-count") == "1" and "(1)" in await page.title()
        assert "New alarm: MAN DOWN (fall), Ann Smith" in await page.inner_text("#announce")
        # The tone is playing: an alarm is sounding, and person tones have been played through a running AudioContext.
        await page.wait_for_function("desk.sounding.length === 1 && desk.tonesPlayed > 0 && desk.lastTone === 'person'")
        assert await page.evaluate("audio.state") == "running"
        await shot(page, "board-desk-1366x768.png")

        await page.keyboard.press("a")  # the top alarm: the only one
        await page.wait_for_function("document.querySelector('#open .card').innerText.includes('acknowledged by desk')")
        assert (await device.wait_command("help_coming")).body["ref"] == alarm["id"]
        await page.wait_for_function("desk.sounding.length === 0")

        await page.keyboard.press("r")
        await page.select_option("#resolve-dialog select[name=reason]", "genuine")
        await page.fill("#resolve-dialog textarea[name=note]", "found in the cold room, first aid given")
        await page.click("#resolve-ok")
        resolved = page.locator("#closed tbody tr").first
        await resolved.wait_for()
        assert RESOLUTIONS["genuine"] in await resolved.inner_text() and "Ann Smith" in await resolved.inner_text()
        assert await page.is_visible("#none-open")
        assert (await device.wait_command("resolved")).body["ref"] == alarm["id"]
    finally:
        device.close()

    await page.goto(desk.url + "/history")
    await page.select_option("#filters select[name=type]", "man_down")
    await page.click("#filters button")
    row = page.locator("#history tbody tr").first
    await page.wait_for_function("document.querySelector('#page-info').innerText.includes('(1 incidents)')")
    # Labels of the vocabulary, not the names the code uses.
    row_text = await row.inner_text()
    assert "Ann Smith" in row_text and "MAN DOWN (fall)" in row_text and "man_down" not in row_text
    assert f"{RESOLUTIONS['genuine']} by desk" in row_text
    assert await page.locator("#filters select[name=type] option:checked").inner_text() == "MAN DOWN"
    await shot(page, "history-desk-1366x768.png")
    csv_url = await page.get_attribute("#csv", "href")
    assert csv_url == "/api/incidents.csv?type=man_down"
    csv = await (await page.request.get(desk.url + csv_url)).text()
    assert "Ann Smith,+44 7700 900123" in csv and "cold-room" in csv

    await row.locator("a").first.click()
    await page.wait_for_selector("#timeline li")
    timeline = await page.inner_text("#timeline")
    for step in ("Raised", "Acknowledged — desk", "Resolved — desk: genuine: found in the cold room"):
        assert step in timeline
    assert alarm["id"] in await page.inner_text("#messages")
    assert "MAN DOWN (fall)" in await page.inner_text("#title")
    assert f"Resolved: {RESOLUTIONS['genuine']} by desk" in await page.inner_text("#summary")
    await shot(page, "incident-desk-1366x768.png")


async def test_a_lost_link_shows_at_once_and_the_board_catches_up_by_itself(page, desk, amqtt_broker):
    await log_in(page, desk.url)
    await page.wait_for_selector("#link.up")
    await desk.cut()
    await page.wait_for_selector("#offline:not([hidden])", timeout=3000)
    assert "LIVE LINK LOST" in await page.inner_text("#offline")

    device = Device(amqtt_broker, "dev-077")  # an alarm while the page is blind
    try:
        device.alarm("panic")
        await device.wait_command("delivered")
    finally:
        device.close()
    await desk.serve()
    await page.wait_for_selector("#offline", state="hidden", timeout=15000)
    card = page.locator("#open .card").first
    await card.wait_for()
    assert "PANIC" in await card.inner_text() and "NO WORKER ASSIGNED" in await card.inner_text()
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload


async def test_a_second_operators_conflicting_action_is_explained(page, desk, amqtt_broker):
    await log_in(page, desk.url)
    await page.wait_for_selector("#link.up")
    device = Device(amqtt_broker, "dev-050")
    try:
        device.alarm("panic")
        card = page.locator("#open .card").first
        await card.wait_for()
        await page.keyboard.press("r")
        await page.wait_for_selector("#resolve-dialog[open]")
        [incident] = desk.gateway.open_incidents()
        await desk.gateway.resolve(incident["id"], "bob", "false_alarm", "pressed by accident")
        await page.select_option("#resolve-dialog select[name=reason]", "genuine")
        await page.click("#resolve-ok")
        await page.wait_for_selector("#resolve-error:not([hidden])")
        explained = await page.inner_text("#resolve-error")
    finally:
        device.close()
    assert f"Incident {incident['id']} was not resolved by you: bob resolved it at" in explained
    assert "False alarm" in explained
    assert desk.gateway.incident(incident["id"])["resolution"] == "false_alarm"


async def test_markup_in_names_is_shown_as_text(page, desk, amqtt_broker):
    desk.worker(MARKUP, "555 0101", "dev-066")
    await log_in(page, desk.url)
    await page.wait_for_selector("#link.up")
    device = Device(amqtt_broker, "dev-066")
    try:
        device.alarm("panic", location={"zone": "<b>lab</b>"})
        card = page.locator("#open .card").first
        await card.wait_for()
        assert MARKUP in await card.inner_text() and "<b>lab</b>" in await card.inner_text()
        assert await page.locator("#open img, #open b:text('lab')").count() == 0
        await page.goto(desk.url + "/devices")
        await page.wait_for_selector("#workers tbody tr")
        assert MARKUP in await page.inner_text("#workers") and await page.locator("main img").count() == 0
        await page.goto(desk.url + "/history")
        await page.wait_for_selector("#history tbody tr")
        assert MARKUP in await page.inner_text("#history") and await page.locator("main img").count() == 0
        await page.click("#history tbody a")
        await page.wait_for_selector("#timeline li")
        assert MARKUP in await page.inner_text("#summary") and await page.locator("main img").count() == 0
    finally:
        device.close()
    assert page.alerts == []


async def test_device_ids_and_phone_numbers_stay_on_one_line_at_the_desk(page, desk, amqtt_broker):
    # What the desk reads out, searches for or dials: "dev-" on one line and
    # "014" on the next reads as two things.
    desk.worker("Ada Lovelace", "555 0102", "dev-a-rather-long-device-id")
    device = Device(amqtt_broker, "dev-a-rather-long-device-id")
    try:
        device.event("pre_alarm_started", cause="fall", countdown_s=20)
        await log_in(page, desk.url)
        await page.goto(desk.url + "/devices")
        await page.wait_for_selector("#devices tbody tr")
        lines = await page.evaluate("""[...document.querySelectorAll('#devices tbody td[data-label=Device] b')]
            .map(b => [b.textContent, b.getClientRects().length])""")
        assert ["dev-a-rather-long-device-id", 1] in lines, lines
        assert all(n == 1 for _, n in lines), lines
        phone = page.locator("#devices a.phone")
        assert await phone.inner_text() == "☎ 555 0102"
        assert await phone.evaluate("a => a.getClientRects().length") == 1
        await shot(page, "devices-desk-1366.png")
        assert await page.evaluate("document.documentElement.scrollWidth") <= DESK["width"]
    finally:
        device.close()


async def test_the_phone_layout_has_no_sideways_scrolling(browser, desk, amqtt_broker):
    dmitri = desk.worker("Dmitri Alexandrovich Ivanov-Rimsky", "+44 7700 900456", "dev-a-rather-long-device-id")
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    try:
        await log_in(page, desk.url)
        await page.wait_for_selector("#link.up")
        device = Device(amqtt_broker, "dev-a-rather-long-device-id")
        try:
            device.event("pre_alarm_started", cause="fall", countdown_s=20)
            device.event("pre_alarm_cancelled", cause="fall")
            device.alarm("man_down", cause="no_motion", location={"zone": "basement-plant-room-2"})
            await page.locator("#open .card").first.wait_for()
        finally:
            device.close()
        await shot(page, "board-phone-390.png")
        [incident] = desk.gateway.open_incidents()
        await desk.gateway.start_session(worker_id=dmitri["id"], place="basement plant room 2", duration_s=3600)
        for path in ("/", "/devices", "/history", f"/incident/{incident['id']}", "/sessions"):
            if path != "/":
                await page.goto(desk.url + path)
                await page.wait_for_load_state("networkidle")
                await shot(page, path.strip("/").split("/")[0] + "-phone-390.png")
                assert "null" not in await page.inner_text("main"), path
            if path == "/devices":
                assert "1 (1 cancelled)" in await page.inner_text("#devices")
            # A row stacked into a card says what each of its values is (the table's head is hidden).
            unlabelled = await page.evaluate("""[...document.querySelectorAll('main tbody td')]
                .filter(td => !td.querySelector('button') && getComputedStyle(td, '::before').content === 'none')
                .map(td => td.textContent)""")
            assert unlabelled == [], (path, unlabelled)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
    finally:
        await context.close()


async def test_a_database_that_refuses_writes_is_shown_on_the_board_until_it_recovers(page, desk, amqtt_broker):
    """The gateway is up and the live link too, but nothing can be stored:
    the board must not look calm."""
    await log_in(page, desk.url)
    await page.wait_for_selector("#link.up")
    assert await page.is_hidden("#gateway-problems")
    blocker = sqlite3.connect(desk.gateway.config.gateway.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    device = Device(amqtt_broker, "dev-009")
    try:
        device.alarm("panic")
        await page.wait_for_selector("#gateway-problems:not([hidden])", timeout=15000)
        assert "refuses writes" in await page.inner_text("#gateway-problems")
        await shot(page, "board-database-refusing-writes.png")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await page.wait_for_selector("#gateway-problems", state="hidden", timeout=15000)
    await page.wait_for_selector("#open .card", timeout=10000)  # the alarm, stored once the database took it
    device.close()
