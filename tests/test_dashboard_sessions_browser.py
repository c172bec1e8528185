"""Lone work at the desk in a real Chromium over a real gateway and broker:
an operator registers a worker's session, extends it and checks them out
from the page; a session that runs overdue turns red without a reload; amber
is the gateway's reminder window, whatever it is configured to."""

from __future__ import annotations

import time

import pytest
from test_dashboard_browser import DESK, browser, desk, log_in, served_desk, shot  # noqa: F401 (fixtures)


@pytest.fixture
async def page(browser):  # noqa: F811
    context = await browser.new_context(viewport=DESK)
    page = await context.new_page()
    page.dialogs = []

    async def answer(dialog):
        # The operator accepts what the page proposes (30 min, "phoned: fine", yes).
        page.dialogs.append(dialog.message)
        await dialog.accept(dialog.default_value)
    page.on("dialog", answer)
    yield page
    await context.close()


def row(session_id):
    return f"#active tr[data-session='{session_id}']"


async def test_register_extend_and_check_out_from_the_page(page, desk):  # noqa: F811
    ann = desk.worker("Ann Smith", "+44 7700 900123", "dev-001")
    await log_in(page, desk.url)
    await page.goto(desk.url + "/sessions")
    await page.wait_for_selector(f"#register option[value='{ann['id']}']", state="attached")
    await page.select_option("#register select[name=worker_id]", str(ann["id"]))
    await page.fill("#register input[name=place]", "boiler room")
    await page.fill("#register input[name=minutes]", "60")
    await page.click("#register button")
    [session] = await _active(desk, 1)
    await page.wait_for_selector(row(session["id"]))
    text = await page.inner_text(row(session["id"]))
    assert "Ann Smith" in text and "+44 7700 900123" in text and "boiler room" in text and "dev-001" in text

    await page.click(row(session["id"]) + " button.extend")
    await _until(lambda: desk.gateway.session(session["id"])["ends_at"] > session["ends_at"] + 1700)
    await page.click(row(session["id"]) + " button.end")
    await page.wait_for_selector(row(session["id"]), state="detached")
    ended = desk.gateway.session(session["id"])
    assert (ended["ended_how"], ended["ended_by"]) == ("ended_by_desk", "desk")
    await page.wait_for_selector("#ended tbody tr")
    assert "Ann Smith" in await page.inner_text("#ended tbody")
    await shot(page, "sessions-ended.png")


async def test_an_overdue_session_turns_red_without_a_reload(page, desk):  # noqa: F811
    await log_in(page, desk.url)
    await page.goto(desk.url + "/sessions")
    await page.wait_for_selector("#none-active:not([hidden])")
    session = await desk.gateway.start_session(name="Bob Jones", phone="0161 496 0000", place="cellar",
                                               duration_s=3)
    await page.wait_for_selector(row(session["id"]) + ".due-soon")  # due within the reminder window
    await page.wait_for_selector(row(session["id"]) + ".overdue", timeout=10_000)
    await _until(lambda: desk.gateway.session(session["id"])["state"] == "overdue")
    await page.wait_for_function(
        f"document.querySelector(\"{row(session['id'])} td.left\").textContent.startsWith('OVERDUE')")
    await shot(page, "sessions-overdue.png")


async def test_an_overdue_alarm_names_whom_the_session_names_even_without_a_device(page, desk):  # noqa: F811
    # Typed in at the desk: nobody in the registry, no device to ask for a battery.
    await log_in(page, desk.url)
    session = await desk.gateway.start_session(name="Bob Jones", phone="0161 496 0000", place="cellar",
                                               duration_s=1)
    card = page.locator("#open .card", has_text="OVERDUE")
    await card.wait_for(timeout=10_000)
    text = await card.inner_text()
    assert "Bob Jones" in text and "0161 496 0000" in text and "cellar" in text
    assert "Lone work due " in text and "last check-in none" in text
    assert "NO WORKER ASSIGNED" not in text and "Battery" not in text and f"session-{session['id']}" not in text
    assert await card.locator("a.phone").get_attribute("href") == "tel:01614960000"
    await shot(page, "overdue-card.png")


@pytest.fixture
async def minute_reminders(tmp_path, amqtt_broker):
    """A desk whose gateway reminds a session one minute before it is due."""
    async with served_desk(tmp_path, amqtt_broker, sessions={"reminder_before_s": 60}) as served:
        yield served


async def test_amber_is_the_gateways_reminder_window(page, minute_reminders):
    desk = minute_reminders
    soon = await desk.gateway.start_session(name="Cat Lee", phone="0161 496 0001", place="lab 3", duration_s=40)
    later = await desk.gateway.start_session(name="Dan Roe", phone="0161 496 0002", place="lab 4", duration_s=150)
    await log_in(page, desk.url)
    await page.goto(desk.url + "/sessions")
    await page.wait_for_selector("#reminder-window:has-text('1 min 00 s')")
    await page.wait_for_selector(row(soon["id"]) + ".due-soon")
    # Due in two and a half minutes: amber under the old fixed five, not under the gateway's one.
    assert await page.get_attribute(row(later["id"]), "class") == ""


async def _active(desk, n):  # noqa: F811
    await _until(lambda: len(desk.gateway.sessions("active")) == n)
    return desk.gateway.sessions("active")


async def _until(predicate, timeout=5.0):
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
