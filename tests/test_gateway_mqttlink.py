"""The gateway's MQTT connection has one explicit state (gateway.mqttlink):
the transitions alone, then the states a real mosquitto drives it through,
and what the desk's health says in each."""

from __future__ import annotations

import logging
import time

import pytest
from gateway_harness import Device, make_config, running_gateway, wait_for

from conftest import MosquittoBroker, require_mosquitto
from gateway.mqttlink import Connection, Event, Received, State
from gateway.service import Gateway


def drive(connection: Connection, *events: Event) -> list[State]:
    seen = []
    for event in events:
        connection.handle(event, time.time())
        seen.append(connection.state)
    return seen


def test_a_connection_is_ready_once_connected_and_subscribed():
    connection = Connection()
    assert connection.state is State.DISCONNECTED and connection.ready_since is None
    assert drive(connection, Event.OPENED, Event.ACCEPTED, Event.SUBSCRIBED) == \
        [State.CONNECTING, State.SUBSCRIBING, State.READY]
    assert connection.ready_since is not None and connection.error is None


def test_losing_the_connection_starts_a_new_generation_of_acks():
    connection = Connection()
    drive(connection, Event.OPENED, Event.ACCEPTED, Event.SUBSCRIBED)
    connection.handle(Event.LOST, time.time(), "connection lost: keepalive")
    assert (connection.state, connection.generation, connection.ready_since) == (State.DISCONNECTED, 1, None)
    assert connection.error == "connection lost: keepalive"
    # paho retries: attempts that fail leave it disconnected, in the same generation.
    assert drive(connection, Event.FAILED, Event.FAILED, Event.OPENED, Event.FAILED) == \
        [State.DISCONNECTED, State.DISCONNECTED, State.CONNECTING, State.DISCONNECTED]
    assert connection.generation == 1
    drive(connection, Event.OPENED, Event.ACCEPTED, Event.LOST)  # lost before its SUBACK
    assert (connection.state, connection.generation) == (State.DISCONNECTED, 2)


@pytest.mark.parametrize("refused_after", [[Event.OPENED], [Event.OPENED, Event.ACCEPTED]],
                         ids=["connection", "subscription"])
def test_a_refusal_is_not_ready_and_says_why_until_the_connection_ends(refused_after):
    connection = Connection()
    drive(connection, *refused_after)
    connection.handle(Event.REFUSED, time.time(), "broker refused: Not authorized")
    assert connection.state is State.REFUSED and connection.error == "broker refused: Not authorized"
    connection.handle(Event.LOST, time.time(), "connection lost: Unspecified error")
    # The refusal is why the broker closed the connection, so it stays the reason given.
    assert connection.state is State.DISCONNECTED and connection.error == "broker refused: Not authorized"
    assert drive(connection, Event.OPENED, Event.ACCEPTED, Event.SUBSCRIBED)[-1] is State.READY
    assert connection.error is None


def test_stopping_is_final_whatever_paho_reports_after_it():
    for way_there in ([], [Event.OPENED], [Event.OPENED, Event.ACCEPTED, Event.SUBSCRIBED]):
        connection = Connection()
        drive(connection, *way_there, Event.STOP)
        assert drive(connection, *Event) == [State.STOPPING] * len(Event)


@pytest.mark.parametrize("state_events, event", [
    ([], Event.ACCEPTED),  # a CONNACK without a connection
    ([], Event.SUBSCRIBED),
    ([Event.OPENED, Event.ACCEPTED, Event.SUBSCRIBED], Event.OPENED),  # a second socket while ready
    ([Event.OPENED, Event.ACCEPTED, Event.SUBSCRIBED], Event.SUBSCRIBED),
])
def test_an_event_the_table_does_not_foresee_is_refused_and_changes_nothing(state_events, event):
    connection = Connection()
    drive(connection, *state_events)
    before = (connection.state, connection.generation, connection.ready_since)
    with pytest.raises(ValueError, match=f"{event.value} while {connection.state.value}"):
        connection.handle(event, time.time())
    assert (connection.state, connection.generation, connection.ready_since) == before


def transitions(caplog) -> list[tuple[str, str]]:
    """(state, event) for every transition the link logged, in order."""
    found = []
    for record in caplog.records:
        text = record.getMessage()
        if record.name == "lonewatch.mqtt" and text.startswith("MQTT connection: "):
            change, event = text.removeprefix("MQTT connection: ").split(" (")
            found.append((change.split(" -> ")[1], event.rstrip(")")))
    return found


async def test_the_state_follows_a_broker_restart_and_health_says_so(tmp_path, mosquitto, caplog):
    caplog.set_level(logging.DEBUG, logger="lonewatch.mqtt")
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        link = gateway.ingest.link
        assert transitions(caplog) == [("connecting", "opened"), ("subscribing", "accepted"), ("ready", "subscribed")]
        health = gateway.health()
        assert health["ok"] and health["broker_connected"] and health["broker_state"] == "ready"
        caplog.clear()

        mosquitto.stop()
        await wait_for(lambda: link.state is State.DISCONNECTED, what="the broker gone")
        health = gateway.health()
        assert not health["ok"] and not health["broker_connected"] and health["broker_state"] == "disconnected"
        assert "not connected to the MQTT broker" in health["problems"][0]
        assert "connection lost" in health["problems"][0]
        await wait_for(lambda: ("disconnected", "failed") in transitions(caplog), timeout=10,
                       what="a reconnect attempt refused by the closed port")

        mosquitto.start()
        await wait_for(lambda: ("ready", "subscribed") in transitions(caplog), timeout=15, what="ready again")
        assert gateway.health()["ok"]
        seen = transitions(caplog)
        assert seen[0] == ("disconnected", "lost")
        assert set(seen[1:-3]) <= {("disconnected", "failed"), ("connecting", "opened")}
        assert seen[-3:] == [("connecting", "opened"), ("subscribing", "accepted"), ("ready", "subscribed")]
        assert gateway.health()["broker_state"] == "ready" and link.error is None

        # A message of the first connection is not acknowledged on the second.
        assert link.ack([Received(0, 1, 1, "lonewatch/v1/hq/dev-001/alarm", b"{}", time.time())]) == 0
        device = Device(mosquitto)
        body = device.alarm("panic")
        assert (await device.wait_command("delivered")).body["ref"] == body["id"]
        device.close()


async def test_a_broker_that_refuses_the_gateway_fails_its_start_with_the_reason(tmp_path, caplog):
    require_mosquitto()
    broker = MosquittoBroker(tmp_path, "allow_anonymous false\n")
    broker.start()
    caplog.set_level(logging.DEBUG, logger="lonewatch.mqtt")
    try:
        gateway = Gateway(make_config(tmp_path, broker, mqtt={"connect_timeout_s": 2.0}))
        with pytest.raises(ConnectionError, match="did not accept the gateway within 2 s .*broker refused: Not auth"):
            await gateway.start()
        assert ("refused", "refused") in transitions(caplog)
        assert ("disconnected", "lost") in transitions(caplog)  # the broker closes a refused connection
        gateway.store.close()
    finally:
        broker.stop()
