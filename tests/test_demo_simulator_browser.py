"""In the demo (what `lonewatch demo` runs: embedded broker, gateway, desk and
a fleet, composed by lonewatch.stack) and a real Chromium: from the board,
the menu leads to the simulator page; a worker is made to fall there; the
board, open in another tab, shows the man-down alarm with the worker's name
without a reload. A worker's name with markup in it stays text. The fleet's
pre-alarm is 1 s here instead of the wearable's 20 s."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_dashboard_browser import DESK, MARKUP, PASSWORD, browser, log_in, require_chromium, shot  # noqa: F401

from conftest import free_port
from gateway import people
from gateway.accounts import pbkdf2_hash
from gateway.broker import EmbeddedBroker
from gateway.config import load_config
from gateway.store import Store
from lonewatch import stack
from simulator.fleet import Fleet


@pytest.fixture
async def demo(tmp_path):
    require_chromium()
    broker = EmbeddedBroker(free_port())
    fleet = Fleet(broker.url, 2, site="demo", seed=3, incident_every_s=None, prealarm_s=1)
    port = free_port()
    config = load_config(None, db=str(tmp_path / "demo.db"), mqtt_url=broker.url, http_port=port,
                         operators={"desk": pbkdf2_hash(PASSWORD, iterations=1000)},
                         registered_devices=[d.device for d in fleet.devices])
    store = Store(config.gateway.db)
    with store.transaction():
        people.add_worker(store, "Ann Smith", "+44 7700 900001", "", "sim-001", time.time(), "test")
        people.add_worker(store, MARKUP, "+44 7700 900002", "", "sim-002", time.time(), "test")
    store.close()
    ready = asyncio.Event()
    running = asyncio.create_task(stack.run(config, embedded_broker=broker, fleet=fleet, ready=ready))
    await asyncio.wait({running, asyncio.ensure_future(ready.wait())}, timeout=30,
                       return_when=asyncio.FIRST_COMPLETED)
    assert ready.is_set(), running.exception() if running.done() else "the demo did not start in 30 s"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_worker_made_to_fall_on_the_simulator_page_appears_on_the_board(browser, demo):  # noqa: F811
    context = await browser.new_context(viewport=DESK)
    alerts = []
    context.on("page", lambda p: p.on("dialog", lambda d: (alerts.append(d.message), d.dismiss())))
    try:
        board = await context.new_page()
        await log_in(board, demo)
        await board.wait_for_selector("#link.up")
        assert await board.is_visible("#none-open")

        simulator = await context.new_page()
        await simulator.goto(demo + "/")
        await simulator.click("header nav a[href='/simulator']")
        await simulator.wait_for_url(demo + "/simulator")
        ann = simulator.locator("#simulated tr[data-device='sim-001']")
        await simulator.wait_for_function(
            "document.querySelector(\"#simulated tr[data-device='sim-001']\")?.innerText.includes('online')")
        assert "Ann Smith" in await ann.inner_text()
        other = await simulator.inner_text("#simulated tr[data-device='sim-002']")
        assert MARKUP in other  # shown as the text it is, not run
        await ann.locator("button.fall").click()
        await simulator.wait_for_selector("#done:has-text('sim-001 falls')")

        card = board.locator("#open .card").first
        await card.wait_for(timeout=15_000)
        text = await card.inner_text()
        assert "MAN DOWN (fall)" in text and "Ann Smith" in text and "+44 7700 900001" in text
        # Lone work started on the other device shows on the page.
        started = await simulator.evaluate(
            "post('/api/simulator/devices/sim-002/session_start?duration_s=600').then(() => 'ok')")
        assert started == "ok"
        await simulator.wait_for_function(
            "document.querySelector(\"#simulated tr[data-device='sim-002']\").innerText.includes('working alone')")
        await shot(simulator, "simulator-desk-1366x768.png")
        assert alerts == []
    finally:
        await context.close()
