"""The embedded amqtt broker under many clients at once, as when the demo's
fleet and gateway start together: amqtt 0.12 walks its subscription table
across awaits while it hands a new client the retained messages, and a client
subscribing meanwhile ended that connection ("dictionary changed size during
iteration"). gateway.broker guards the table."""

import logging
import queue
import threading
import time

import paho.mqtt.client as mqtt

CLIENTS = 40


def topic(n):
    return f"lonewatch/v1/hq/dev-{n:03d}/cmd"


def test_clients_connecting_at_once_with_retained_messages_all_stay_connected(amqtt_broker, caplog):
    caplog.set_level(logging.ERROR)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.connect(amqtt_broker.host, amqtt_broker.port)
    publisher.loop_start()
    for n in range(CLIENTS):
        publisher.publish(topic(n), b"retained", qos=1, retain=True).wait_for_publish(5)

    got = queue.Queue()
    subscribed = []
    dropped = []
    clients = []

    def start(n):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{n:03d}")
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic(n), qos=1)
        client.on_subscribe = lambda *args: subscribed.append(n)
        # amqtt also replays retained messages of other clients' subscriptions
        # (docs/protocol.md); like every lonewatch client, ignore those.
        client.on_message = lambda c, u, m: m.topic == topic(n) and got.put((m.topic, m.payload))
        client.on_disconnect = lambda *args: dropped.append(n)
        client.connect(amqtt_broker.host, amqtt_broker.port, keepalive=30)
        client.loop_start()
        clients.append(client)

    starters = [threading.Thread(target=start, args=(n,)) for n in range(CLIENTS)]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    deadline = time.monotonic() + 10
    while len(subscribed) < CLIENTS and time.monotonic() < deadline:
        time.sleep(0.05)
    for n in range(CLIENTS):
        publisher.publish(topic(n), b"fresh", qos=1).wait_for_publish(5)
    received = sorted(got.get(timeout=10) for _ in range(2 * CLIENTS))
    dropped_while_running = list(dropped)
    for client in [publisher, *clients]:
        client.disconnect()  # first, so the network loop ends at once
        client.loop_stop()

    assert dropped_while_running == []
    assert "changed size during iteration" not in caplog.text
    assert received == sorted([(topic(n), b"retained") for n in range(CLIENTS)]
                              + [(topic(n), b"fresh") for n in range(CLIENTS)])
