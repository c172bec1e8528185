"""Notifications survive the gateway: pending webhook deliveries are in the
database from the transaction that decided them, so a gateway killed with
SIGKILL, or stopped cleanly, delivers them when it starts again, and an
operator can put dead letters back while it runs. Real gateway (in its own
process where it is killed), real mosquitto, a real HTTP receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3

from aiohttp import web

from conftest import free_port
from gateway_harness import Device, GatewayProcess, make_config, running_gateway, wait_for, write_config
from lonewatch import cli

SECRET = "s3cret-for-tests-only"
REGISTERED = {"registered": ["dev-001"]}


class Receiver:
    """A webhook endpoint on a fixed port, so it can be down and come back at the same address.
    `answer` is awaited before each reply: a receiver that holds its answer waits on it."""

    def __init__(self, port: int):
        self.port = port
        self.received: list[dict] = []
        self.status = 200
        self.answer = asyncio.Event()
        self.answer.set()
        self.arrived = asyncio.Event()
        self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pager"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/pager", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.received.append({"delivery": request.headers["X-Lonewatch-Delivery"], "body": body})
        self.arrived.set()
        await self.answer.wait()
        return web.Response(status=self.status, text="scripted")

    def answered(self) -> list[tuple[int, str]]:
        """(incident, event) of every request received, in order."""
        return [(r["body"]["incident"]["id"], r["body"]["event"]) for r in self.received]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def routing(receiver: Receiver, **hook) -> str:
    settings = {"backoff_s": 0.1, "backoff_max_s": 0.3, "max_attempts": 100, "timeout_s": 600, **hook}
    return (f'[routing.channels.pager]\ntype = "webhook"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
            + "".join(f"{k} = {v!r}\n" for k, v in settings.items())
            + '\n[[routing.rules]]\nchannels = ["pager"]\n')


def rows(db_path, table: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def gateway_process(tmp_path, mosquitto, receiver: Receiver):
    """A `lonewatch gateway` process that can be killed, routing to `receiver`,
    and a device connected once it is ready; all three ended afterwards."""
    gateway = GatewayProcess(write_config(tmp_path, mosquitto, routing(receiver), devices=REGISTERED,
                                          dashboard={"port": free_port()}))
    gateway.start()
    device = None
    try:
        await gateway.ready()
        device = Device(mosquitto)
        yield gateway, device
    finally:
        if device:
            device.close()
        gateway.stop()
        await receiver.stop()


def notified(db_path) -> list[tuple[int, str]]:
    return [(r["incident_id"], r["detail"]) for r in rows(db_path, "audit") if r["action"] == "notified"]


async def test_a_delivery_pending_when_the_gateway_is_killed_is_delivered_after_the_restart(tmp_path, mosquitto):
    receiver = Receiver(free_port())  # down: nothing listens there yet
    db = tmp_path / "lonewatch.db"
    async with gateway_process(tmp_path, mosquitto, receiver) as (gateway, device):
        device.alarm("panic")
        await device.wait_command("delivered")
        [waiting] = await wait_for(lambda: rows(db, "deliveries"), what="the delivery pending")
        await wait_for(lambda: gateway.logged("pager: raised for incident"), what="a failed attempt")
        gateway.kill()

        await receiver.start()
        gateway.start()
        await gateway.ready(timeout=20)
        await wait_for(lambda: notified(db), timeout=10, what="the delivery after the restart")
        assert receiver.answered() == [(waiting["incident_id"], "raised")]
        assert receiver.received[0]["delivery"] == waiting["delivery_id"]
        assert rows(db, "deliveries") == [] and rows(db, "dead_letters") == []


async def test_a_receiver_holding_its_answer_when_the_gateway_is_killed_gets_it_again_once(tmp_path, mosquitto):
    receiver = Receiver(free_port())
    receiver.answer.clear()
    await receiver.start()
    db = tmp_path / "lonewatch.db"
    async with gateway_process(tmp_path, mosquitto, receiver) as (gateway, device):
        device.alarm("panic")
        await receiver.arrived.wait()
        gateway.kill()  # the request is in the receiver's hands, not answered

        receiver.answer.set()
        gateway.start()
        await gateway.ready(timeout=20)
        await wait_for(lambda: notified(db), timeout=10, what="the delivery after the restart")
        first, again = receiver.received
        # The same notification, sent again after the restart; receivers drop repeats by its id.
        assert first["delivery"] == again["delivery"] and first["body"] == again["body"]
        # Delivered and recorded in one transaction: nothing is left for a later tick to send.
        assert len(receiver.received) == 2 and rows(db, "deliveries") == []


async def test_deliveries_in_flight_at_a_clean_stop_are_resumed_at_the_next_start(tmp_path, mosquitto):
    receiver = Receiver(free_port())
    receiver.answer.clear()
    await receiver.start()
    config = make_config(tmp_path, mosquitto, routing(receiver), devices=REGISTERED)
    db = config.gateway.db
    try:
        async with running_gateway(config) as gateway:
            device = Device(mosquitto)
            device.alarm("panic")
            await receiver.arrived.wait()
            [incident] = gateway.store.list_incidents()
            await gateway.acknowledge(incident["id"], "carol")
            await wait_for(lambda: len(receiver.received) == 2, what="both notifications sent")
            device.close()
        # Stopped with both unanswered: pending, not dead letters.
        assert [(r["incident_id"], r["event"]) for r in rows(db, "deliveries")] == [
            (incident["id"], "raised"), (incident["id"], "acknowledged")]
        assert rows(db, "dead_letters") == []

        receiver.answer.set()
        async with running_gateway(config) as gateway:
            await wait_for(lambda: len(notified(db)) == 2, what="both delivered after the start")
        assert sorted(receiver.answered()[2:]) == [(incident["id"], "acknowledged"), (incident["id"], "raised")]
        assert sorted(r["delivery"] for r in receiver.received[:2]) == sorted(r["delivery"] for r in receiver.received[2:])
        assert rows(db, "deliveries") == []
    finally:
        await receiver.stop()


async def test_a_dead_letter_put_back_is_delivered_by_the_running_gateway(tmp_path, mosquitto, capsys):
    receiver = Receiver(free_port())
    receiver.status = 401  # a wrong secret: needs a person, so no retry
    await receiver.start()
    config = make_config(tmp_path, mosquitto, routing(receiver), devices=REGISTERED)
    db = config.gateway.db
    try:
        async with running_gateway(config):
            device = Device(mosquitto)
            device.alarm("panic")
            [letter] = await wait_for(lambda: rows(db, "dead_letters"), what="the dead letter")
            assert "HTTP 401" in letter["last_error"]
            capsys.readouterr()
            assert cli.main(["deliveries", "list", "--db", db]) == 0
            listed = capsys.readouterr().out.splitlines()
            assert listed[0].startswith(f"dead letter #{letter['id']} ") and "HTTP 401" in listed[0]
            assert listed[-1] == "0 pending, 1 dead letter(s)"

            receiver.status = 200  # the secret put right
            assert cli.main(["deliveries", "retry", "--db", db, "--id", str(letter["id"])]) == 0
            assert capsys.readouterr().out.startswith("1 dead letter(s) back for delivery")
            await wait_for(lambda: notified(db), timeout=5, what="the retried delivery")
            assert [r["delivery"] for r in receiver.received] == [letter["delivery_id"]] * 2
            assert rows(db, "dead_letters") == [] and rows(db, "deliveries") == []
            device.close()
    finally:
        await receiver.stop()


def test_retrying_a_dead_letter_that_does_not_exist_says_so(tmp_path, capsys):
    from gateway.store import Store

    Store(str(tmp_path / "lonewatch.db")).close()
    assert cli.main(["deliveries", "retry", "--db", str(tmp_path / "lonewatch.db"), "--id", "7"]) == 2
    assert "no dead letter with id 7" in capsys.readouterr().err
