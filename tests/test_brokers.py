"""Both brokers the project supports carry a QoS 1 message and a retained
Last Will, which everything else relies on."""

import queue

import paho.mqtt.client as mqtt


def connect(broker, client_id, **kwargs):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **kwargs)
    client.connect(broker.host, broker.port, keepalive=5)
    client.loop_start()
    return client


def test_qos1_message_and_retained_will_reach_a_subscriber(any_broker):
    got = queue.Queue()
    sub = connect(any_broker, "sub")
    sub.on_message = lambda c, u, m: got.put((m.topic, m.payload, m.retain))
    sub.subscribe("lonewatch/v1/#", qos=1)

    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-1")
    dev.will_set("lonewatch/v1/hq/dev-1/status", b'{"state":"offline"}', qos=1, retain=True)
    dev.connect(any_broker.host, any_broker.port, keepalive=5)
    dev.loop_start()
    dev.publish("lonewatch/v1/hq/dev-1/alarm", b"hello", qos=1).wait_for_publish(5)
    assert got.get(timeout=5)[:2] == ("lonewatch/v1/hq/dev-1/alarm", b"hello")

    dev.loop_stop()
    dev.socket().close()  # vanish without DISCONNECT: the broker must fire the will
    topic, payload, _ = got.get(timeout=15)
    assert (topic, payload) == ("lonewatch/v1/hq/dev-1/status", b'{"state":"offline"}')
    sub.loop_stop()
    sub.disconnect()
