"""Routing delivers to real receivers: an aiohttp webhook server and an aiosmtpd
SMTP server on free ports, with the pending deliveries and dead letters in a
real SQLite file."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import threading
import time

import pytest
import sqlite_utils
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from conftest import free_port
from gateway.incidents import Effects, raise_alarm
from gateway.routing import Router, parse_routing_config
from gateway.store import Store

SECRET = "s3cret-for-tests-only"
PANIC = {
    "id": 42,
    "site": "hq",
    "device": "dev-001",
    "type": "panic",
    "cause": None,
    "state": "open",
    "raised_at": 1795300000.25,
    "alarm_id": "dev-001:12:7",
    "registered": True,
    "location": {"zone": "lab-3"},
}


class WebhookReceiver:
    """A webhook endpoint that verifies signatures the way docs/routing.md says."""

    def __init__(self):
        self.received: list[dict] = []  # every request, verified or not
        self.statuses: list[int] = []  # scripted responses; the last one repeats
        self.hang = False
        self.hanging = asyncio.Event()
        self.arrived = asyncio.Event()

    def verify(self, request: web.Request, raw: bytes) -> bool:
        timestamp = request.headers["X-Lonewatch-Timestamp"]
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(timestamp)) <= 300
        given = request.headers["X-Lonewatch-Signature"]
        return fresh and hmac.compare_digest(given, "sha256=" + expected)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(
            {
                "path": request.path,
                "verified": self.verify(request, raw),
                "delivery": request.headers["X-Lonewatch-Delivery"],
                "body": json.loads(raw),
            }
        )
        self.arrived.set()
        if self.hang:
            self.hanging.set()
            await asyncio.sleep(3600)
        status = self.statuses[min(len(self.received), len(self.statuses)) - 1] if self.statuses else 200
        return web.Response(status=status, text="scripted")


@pytest.fixture
async def receiver():
    hook = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/{name}", hook.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    hook.url = lambda name: str(server.make_url(f"/{name}"))
    yield hook
    await server.close()


class MailHandler:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.replies: list[str] = []  # scripted SMTP replies to DATA; then 250

    async def handle_DATA(self, server, session, envelope):
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    handler = MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def routing(receiver=None, smtp=None, hook=None, mail=None, **extra) -> dict:
    channels = {}
    if receiver is not None:
        channels["ops-hook"] = {"type": "webhook", "url": receiver.url("ops-hook"), "secret": SECRET,
                                "backoff_s": 0.05, **(hook or {})}
    if smtp is not None:
        channels["duty-mail"] = {"type": "email", "host": "127.0.0.1", "port": smtp.port, "tls": "none",
                                 "from": "gateway@site.example", "to": ["duty@site.example"],
                                 "backoff_s": 0.05, **(mail or {})}
    table = {"channels": channels, "rules": [{"channels": list(channels)}]}
    table.update(extra)
    return parse_routing_config(table)


async def eventually(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def dead_letters(db_path) -> list[dict]:
    return list(sqlite_utils.Database(db_path)["dead_letters"].rows)


def pending(db_path) -> list[dict]:
    return list(sqlite_utils.Database(db_path)["deliveries"].rows)


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "gateway.db"))
    yield store
    store.close()


def dispatch(router: Router, store: Store, incident: dict, event: str, tier: int = 0) -> None:
    """What the gateway does: decide in the incident change's transaction, start once committed."""
    with store.transaction():
        router.decide(store, incident, event, tier)
    router.pick_up()


async def test_webhook_post_is_signed_and_the_receiver_can_verify_it(receiver, store, tmp_path):
    router = Router(routing(receiver), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: receiver.received)
    await router.close()

    [request] = receiver.received
    assert request["verified"]
    body = request["body"]
    assert body["event"] == "raised" and body["tier"] == 0
    assert body["incident"]["alarm_id"] == "dev-001:12:7"
    assert body["incident"]["priority"] == "critical"
    assert abs(body["gateway_time"] - time.time()) < 60
    assert router.delivered_total == {"ops-hook": 1}


async def test_a_tampered_body_or_wrong_secret_fails_verification(receiver, store, tmp_path):
    config = routing(receiver)
    config.channels["ops-hook"].secret = "not-the-receivers-secret"
    router = Router(config, store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: receiver.received)
    await router.close()
    assert not receiver.received[0]["verified"]


async def test_webhook_retries_on_server_error_with_the_same_delivery_id(receiver, store, tmp_path):
    receiver.statuses = [500, 503, 200]
    router = Router(routing(receiver), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: router.delivered_total["ops-hook"] == 1)
    await router.close()

    assert len(receiver.received) == 3
    assert len({r["delivery"] for r in receiver.received}) == 1
    assert all(r["verified"] for r in receiver.received)
    assert router.failures_total == {"ops-hook": 2}
    assert dead_letters(tmp_path / "gateway.db") == []


async def test_webhook_goes_to_dead_letters_after_max_attempts(receiver, store, tmp_path):
    db_path = tmp_path / "gateway.db"
    receiver.statuses = [500]
    router = Router(routing(receiver, hook={"max_attempts": 3}), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: router.dead_letters_total["ops-hook"] == 1)
    await router.close()

    assert len(receiver.received) == 3
    [letter] = dead_letters(db_path)
    assert letter["channel"] == "ops-hook"
    assert letter["incident_id"] == "42"
    assert letter["event"] == "raised"
    assert letter["attempts"] == 3
    assert "HTTP 500" in letter["last_error"]
    assert json.loads(letter["payload"])["incident"]["device"] == "dev-001"
    assert router.failures_total == {"ops-hook": 3}
    assert pending(db_path) == []  # moved, not copied


async def test_a_rejected_webhook_is_not_retried(receiver, store, tmp_path):
    receiver.statuses = [401]
    router = Router(routing(receiver), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: router.dead_letters_total["ops-hook"] == 1)
    await router.close()
    assert len(receiver.received) == 1
    assert "HTTP 401" in dead_letters(tmp_path / "gateway.db")[0]["last_error"]


async def test_a_retry_pending_at_close_stays_pending_and_the_next_start_sends_it(receiver, store, tmp_path):
    receiver.statuses = [500, 200]
    router = Router(routing(receiver, hook={"backoff_s": 600}), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: router.failures_total["ops-hook"] == 1)
    await asyncio.wait_for(router.close(), 5)
    assert dead_letters(tmp_path / "gateway.db") == []
    assert [row["event"] for row in pending(tmp_path / "gateway.db")] == ["raised"]

    restarted = Router(routing(receiver), store)
    restarted.pick_up()
    await eventually(lambda: restarted.delivered_total["ops-hook"] == 1)
    await restarted.close()
    assert len({r["delivery"] for r in receiver.received}) == 1  # the same notification, resumed
    assert pending(tmp_path / "gateway.db") == []


async def test_close_cancels_a_hanging_delivery_and_the_next_start_sends_it_again(receiver, store, tmp_path):
    receiver.hang = True
    router = Router(routing(receiver, hook={"timeout_s": 600}), store)
    dispatch(router, store, PANIC, "raised")
    await receiver.hanging.wait()
    await asyncio.wait_for(router.close(grace_s=0.2), 5)
    assert dead_letters(tmp_path / "gateway.db") == []

    receiver.hang = False
    restarted = Router(routing(receiver), store)
    restarted.pick_up()
    await eventually(lambda: restarted.delivered_total["ops-hook"] == 1)
    await restarted.close()
    first, again = receiver.received
    assert first["delivery"] == again["delivery"] and again["verified"]


async def test_a_decision_after_close_stays_pending_for_the_next_start(receiver, store, tmp_path):
    router = Router(routing(receiver), store)
    await router.close()
    dispatch(router, store, PANIC, "acknowledged")
    assert [(row["event"], row["channel"]) for row in pending(tmp_path / "gateway.db")] == [
        ("acknowledged", "ops-hook")]
    assert receiver.received == [] and dead_letters(tmp_path / "gateway.db") == []


async def test_a_delivery_to_a_channel_no_longer_configured_goes_to_dead_letters(receiver, smtp, store, tmp_path):
    router = Router(routing(receiver), store)
    await router.close()
    dispatch(router, store, PANIC, "raised")

    restarted = Router(routing(smtp=smtp), store)
    restarted.pick_up()
    await eventually(lambda: dead_letters(tmp_path / "gateway.db"))
    await restarted.close()
    [letter] = dead_letters(tmp_path / "gateway.db")
    assert letter["channel"] == "ops-hook" and "no longer in the routing config" in letter["last_error"]
    assert pending(tmp_path / "gateway.db") == [] and smtp.messages == []


async def test_email_says_what_where_when_and_what_to_do(smtp, store, tmp_path):
    router = Router(routing(smtp=smtp), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: smtp.messages)
    await router.close()

    [msg] = smtp.messages
    assert msg["Subject"] == "[lonewatch] PANIC dev-001 hq — raised"
    assert msg["To"] == "duty@site.example"
    text = msg.get_content()
    assert "site hq, zone lab-3" in text
    assert "raised 2026-11-21 22:26:40 UTC" in text
    assert "Call them now" in text
    assert "acknowledge the incident" in text


async def test_email_for_an_unregistered_man_down_escalation_says_so(smtp, store, tmp_path):
    incident = dict(PANIC, type="man_down", cause="fall", registered=False, location=None)
    config = routing(smtp=smtp, escalation={"tiers": [["duty-mail"]]})
    router = Router(config, store)
    dispatch(router, store, incident, "escalated", tier=1)
    await eventually(lambda: smtp.messages)
    await router.close()

    [msg] = smtp.messages  # rule and tier name the same channel: one message
    assert msg["Subject"] == "[lonewatch] MAN DOWN (fall) dev-001 UNREGISTERED hq — escalated, tier 1"
    text = msg.get_content()
    assert "NOT REGISTERED" in text
    assert "no location reported" in text
    assert "escalation tier 1" in text


async def test_email_for_a_resolved_incident_says_who_and_why(smtp, store, tmp_path):
    resolved = dict(PANIC, state="resolved", resolved_by="carol", resolved_at=1795300300.0,
                    resolution="false_alarm", note="pressed by accident")
    router = Router(routing(smtp=smtp), store)
    dispatch(router, store, resolved, "resolved", tier=1)
    await eventually(lambda: smtp.messages)
    await router.close()

    [msg] = smtp.messages
    assert msg["Subject"] == "[lonewatch] PANIC dev-001 hq — resolved"
    assert "X-Priority" not in msg
    text = msg.get_content()
    assert "Resolved by carol at 2026-11-21 22:31:40 UTC, reason: false_alarm" in text
    assert "pressed by accident" in text and "No action needed" in text


async def test_email_is_retried_when_the_server_says_try_later(smtp, store, tmp_path):
    smtp.replies = ["451 Requested action aborted: local error in processing"]
    router = Router(routing(smtp=smtp), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: smtp.messages)
    await router.close()
    assert router.failures_total == {"duty-mail": 1}
    assert router.delivered_total == {"duty-mail": 1}


async def test_a_hanging_webhook_delays_neither_the_caller_nor_the_email(receiver, smtp, store, tmp_path):
    receiver.hang = True
    config = routing(receiver, smtp, hook={"timeout_s": 600})
    router = Router(config, store)

    dispatch(router, store, PANIC, "raised")
    # dispatch returned without yielding to the loop, so nothing was sent yet.
    assert receiver.received == [] and smtp.messages == []

    await receiver.hanging.wait()
    await eventually(lambda: smtp.messages)
    assert receiver.hanging.is_set() and router.delivered_total["ops-hook"] == 0
    await router.close(grace_s=0.1)


async def test_escalation_tiers_reach_the_right_receivers(receiver, store, tmp_path):
    hook = {"type": "webhook", "secret": SECRET, "backoff_s": 0.05}
    table = {
        "channels": {
            "desk-hook": dict(hook, url=receiver.url("desk-hook")),
            "duty-hook": dict(hook, url=receiver.url("duty-hook")),
            "manager-hook": dict(hook, url=receiver.url("manager-hook")),
        },
        "rules": [{"sites": ["hq"], "channels": ["desk-hook"]}],
        "escalation": {"tiers": [["duty-hook"], ["manager-hook"]]},
    }
    router = Router(parse_routing_config(table), store)
    dispatch(router, store, PANIC, "escalated", tier=2)
    await eventually(lambda: len(receiver.received) == 2)
    await asyncio.sleep(0.1)
    await router.close()
    assert sorted(r["path"] for r in receiver.received) == ["/desk-hook", "/manager-hook"]
    assert all(r["body"]["tier"] == 2 for r in receiver.received)


async def test_each_channel_notified_goes_into_the_incidents_timeline_written_off_the_event_loop(
        receiver, smtp, store, tmp_path):
    writers = []
    real_audit = store.audit

    def audit(*args, **kwargs):
        writers.append(threading.current_thread())
        return real_audit(*args, **kwargs)

    store.audit = audit
    router = Router(routing(receiver, smtp), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: len(store.incident_audit(PANIC["id"])) == 2)
    await router.close()

    entries = {a["actor"]: a for a in store.incident_audit(PANIC["id"])}
    assert set(entries) == {"ops-hook", "duty-mail"}
    assert all(a["action"] == "notified" and a["detail"] == "raised (attempt 1)" for a in entries.values())
    # The loop runs the timers; the database lock may be held by the ingest mid-commit.
    assert threading.main_thread() not in writers


async def test_a_notification_that_failed_is_not_called_notified(receiver, store, tmp_path):
    receiver.statuses = [500, 200]
    router = Router(routing(receiver, hook={"max_attempts": 1}), store)
    dispatch(router, store, PANIC, "raised")
    await eventually(lambda: router.dead_letters_total["ops-hook"] == 1)
    dispatch(router, store, dict(PANIC, state="acknowledged"), "acknowledged")
    await eventually(lambda: store.incident_audit(PANIC["id"]))
    await router.close()

    [entry] = store.incident_audit(PANIC["id"])
    assert (entry["actor"], entry["action"], entry["detail"]) == ("ops-hook", "notified", "acknowledged (attempt 1)")


async def test_a_decision_written_twice_in_one_transaction_is_one_delivery(receiver, store, tmp_path):
    """The ingest's careful path writes a message's decisions in its savepoint, then its batch's."""
    router = Router(routing(receiver), store)
    effects = Effects()
    with store.transaction():
        raise_alarm(store, effects, site="hq", device="dev-001", alarm_type="panic", cause=None,
                    now=time.time(), alarm_id="dev-001:1:1")
        router.store(store, effects)
        router.store(store, effects)
    [row] = pending(tmp_path / "gateway.db")
    assert (row["event"], row["channel"]) == ("raised", "ops-hook")
    router.pick_up()
    await eventually(lambda: router.delivered_total["ops-hook"] == 1)
    await router.close()
    assert len(receiver.received) == 1 and pending(tmp_path / "gateway.db") == []
