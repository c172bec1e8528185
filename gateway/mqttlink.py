"""The gateway's MQTT connection: one paho client and one explicit state.

    paho network thread --on_message--> Received(generation, mid, ...) --> inbox
    writer thread (gateway.ingest) --ack(messages)--> PUBACKs, in receive order
    anyone --publish()--> paho (thread-safe); on_published(mid) on its PUBACK

paho's callbacks drive one state machine, and nothing else keeps connection
state:

    DISCONNECTED --opened--> CONNECTING --accepted (CONNACK)--> SUBSCRIBING
        --subscribed (SUBACK)--> READY
    CONNECTING or SUBSCRIBING --refused--> REFUSED   (error says which)
    any but STOPPING --lost--> DISCONNECTED          (generation + 1)
    DISCONNECTED or CONNECTING --failed--> DISCONNECTED  (no connection made)
    anything --stop--> STOPPING, and it stays there

The gateway is ready (health, the start-up wait) only in READY. paho
reconnects by itself, with backoff 1..30 s, from DISCONNECTED; a refused
CONNACK is followed by the broker closing the connection, so by `lost`.

Packet ids belong to one connection: after a reconnect the broker resends
everything unacknowledged under the same ids, possibly reused. Each message
carries the generation it was received in, and ack() sends a PUBACK only for
the current one, under the same lock as `lost` increments it: a PUBACK is
either queued before paho drops the old connection's packets, or not at all.

Heartbeats (QoS 0, replaced 30 s later) received while more than
SHED_HEARTBEATS_ABOVE messages wait in the inbox are shed rather than queued:
while the database refuses writes, a fleet's heartbeats would otherwise grow
the queue without bound. QoS 1 messages are never shed; the broker's
in-flight window holds those.

The gateway's own status topic is retained: `online` on every connect,
`offline` on stop and as the Last Will.
"""

from __future__ import annotations

import enum
import logging
import queue
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import protocol
from gateway.config import Config
from gateway.mqttclient import BufferedClient

log = logging.getLogger("lonewatch.mqtt")

SUBSCRIPTIONS = [(f"{protocol.TOPIC_ROOT}/+/+/{kind}", 1) for kind in protocol.UPLINK_KINDS]
SHED_HEARTBEATS_ABOVE = 20_000
SHED_LOG_EVERY_S = 60.0


class State(enum.Enum):
    DISCONNECTED = "disconnected"  # no connection; paho tries again with backoff
    CONNECTING = "connecting"  # socket open, CONNECT sent, waiting for CONNACK
    SUBSCRIBING = "subscribing"  # CONNACK accepted, SUBSCRIBE sent, waiting for SUBACK
    READY = "ready"  # subscribed: messages flow and are acknowledged
    REFUSED = "refused"  # the broker refused the connection or a subscription
    STOPPING = "stopping"  # stop() was called: the end, whatever paho reports now


class Event(enum.Enum):
    OPENED = "opened"  # paho opened a socket and sends CONNECT
    ACCEPTED = "accepted"  # CONNACK, success
    SUBSCRIBED = "subscribed"  # SUBACK, every subscription granted
    REFUSED = "refused"  # CONNACK or SUBACK with a failure
    FAILED = "failed"  # paho's on_connect_fail: opening the connection raised (port closed, DNS, TLS)
    LOST = "lost"  # paho's on_disconnect: this connection is over
    STOP = "stop"


_UP = (State.CONNECTING, State.SUBSCRIBING, State.READY, State.REFUSED)
TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.DISCONNECTED, Event.OPENED): State.CONNECTING,
    (State.CONNECTING, Event.ACCEPTED): State.SUBSCRIBING,
    (State.SUBSCRIBING, Event.SUBSCRIBED): State.READY,
    (State.CONNECTING, Event.REFUSED): State.REFUSED,
    (State.SUBSCRIBING, Event.REFUSED): State.REFUSED,
    (State.DISCONNECTED, Event.FAILED): State.DISCONNECTED,
    (State.CONNECTING, Event.FAILED): State.DISCONNECTED,
    (State.DISCONNECTED, Event.LOST): State.DISCONNECTED,
    **{(state, Event.LOST): State.DISCONNECTED for state in _UP},
    **{(state, Event.STOP): State.STOPPING for state in State},
    **{(State.STOPPING, event): State.STOPPING for event in Event},
}


class Connection:
    """The state machine alone: no paho, no locks (MqttLink holds one around it)."""

    def __init__(self):
        self.state = State.DISCONNECTED
        self.generation = 0  # which connection a received message belongs to
        self.error: str | None = None  # why the last attempt did not reach READY
        self.ready_since: float | None = None

    def handle(self, event: Event, now: float, error: str | None = None) -> State:
        """Apply one event; returns the state before it. An event the table
        does not expect in this state leaves the state as it is (ValueError)."""
        before = self.state
        after = TRANSITIONS.get((before, event))
        if after is None:
            raise ValueError(f"MQTT connection: {event.value} while {before.value}")
        if event is Event.LOST:
            self.generation += 1
        if error is not None and not (event is Event.LOST and before is State.REFUSED):
            self.error = error  # (a refusal is why its connection ended: that stays the reason)
        elif after is State.READY:
            self.error = None
        self.ready_since = now if after is State.READY else None  # READY is entered from SUBSCRIBING only
        self.state = after
        return before


class Received:
    __slots__ = ("generation", "mid", "qos", "topic", "payload", "received_at")

    def __init__(self, generation, mid, qos, topic, payload, received_at):
        self.generation = generation
        self.mid = mid
        self.qos = qos
        self.topic = topic
        self.payload = payload
        self.received_at = received_at


class MqttLink:
    def __init__(self, config: Config, inbox: queue.SimpleQueue):
        """Received messages go to inbox.put; its qsize() is the backlog heartbeats are shed above."""
        self.config = config
        self.inbox = inbox
        self.heartbeats_shed = 0  # written by paho's network thread only
        # Called on paho's network thread with the mid of each PUBACK the broker sends us.
        self.on_published = None
        self.status_topic = protocol.gateway_status_topic(config.gateway.id)
        self._connection = Connection()
        self._lock = threading.Lock()  # the connection's state, and acks against its generation
        self._changed = threading.Condition(self._lock)
        self._last_shed_log = float("-inf")

        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=config.client_id, clean_session=False,
            protocol=mqtt.MQTTv311, manual_ack=True,
        )
        if config.mqtt.username:
            client.username_pw_set(config.mqtt.username, config.mqtt.password or None)
        if config.mqtt.tls:
            # Verifies the broker's certificate and host name (paho's default).
            client.tls_set(ca_certs=config.mqtt.ca_file or None)
        client.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # No cap on unacknowledged commands: a burst of alarms, each answered
        # "delivered", must not queue inside paho (default cap 20). The cap
        # also costs paho a scan of its whole in-flight table on every PUBACK:
        # with 100, the alarms-only benchmark ran about 10 % slower.
        client.max_inflight_messages_set(0)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    def _status(self, state: str) -> bytes:
        return protocol.encode({"v": protocol.VERSION, "gateway": self.config.gateway.id, "state": state,
                                "time": round(time.time(), 3)})

    # ---- what the rest of the gateway reads ----------------------------------

    @property
    def state(self) -> State:
        return self._connection.state

    @property
    def ready(self) -> bool:
        return self._connection.state is State.READY

    @property
    def ready_since(self) -> float | None:
        """Since when the current connection is subscribed; None while it is not."""
        return self._connection.ready_since

    @property
    def error(self) -> str | None:
        """Why the connection is not READY, if the broker or the network said why."""
        return self._connection.error

    # ---- lifecycle -------------------------------------------------------------

    def start(self, timeout_s: float) -> None:
        """Connect and subscribe; blocking. Raises ConnectionError unless READY within timeout_s."""
        try:
            self.client.connect(self.config.mqtt.host, self.config.mqtt.port, keepalive=self.config.mqtt.keepalive)
        except OSError as exc:
            raise ConnectionError(f"cannot reach the MQTT broker at {self.config.mqtt.url}: {exc}") from None
        self.client.loop_start()
        with self._changed:
            ready = self._changed.wait_for(lambda: self._connection.state is State.READY, timeout_s)
            why = self._connection.error or f"{self._connection.state.value}, no CONNACK/SUBACK"
        if not ready:
            self.client.loop_stop()
            self.client.disconnect()
            raise ConnectionError(
                f"MQTT broker at {self.config.mqtt.url} did not accept the gateway within {timeout_s:g} s ({why})"
            )

    def stop(self) -> None:
        """Say goodbye (retained `offline`) if connected, and disconnect. Blocking."""
        before = self._handle(Event.STOP)
        if before in (State.SUBSCRIBING, State.READY):
            info = self.client.publish(self.status_topic, self._status("offline"), qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(1.0)
        self.client.disconnect()
        self.client.loop_stop()

    # ---- for the writer and the downlink --------------------------------------

    def ack(self, messages: list[Received]) -> int:
        """PUBACK, in the order given, the QoS 1 messages of the current connection; returns how many."""
        acked = 0
        with self._lock:
            generation = self._connection.generation
            for item in messages:
                if item.qos > 0 and item.generation == generation:
                    self.client.ack(item.mid, item.qos)
                    acked += 1
        return acked

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        """Queue a publish in paho: sent now, or once (re)connected. Any thread."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---- paho callbacks (network thread; the first connect's in start()) --------

    def _handle(self, event: Event, error: str | None = None) -> State:
        with self._changed:
            try:
                before = self._connection.handle(event, time.time(), error)
            except ValueError as exc:
                # paho reported something this table does not foresee: say so, keep the state.
                log.warning("%s; state kept", exc)
                return self._connection.state
            # Logged before anyone waiting for this state is woken: a line per transition, in order.
            log.debug("MQTT connection: %s -> %s (%s)", before.value, self._connection.state.value, event.value)
            self._changed.notify_all()
        return before

    def _on_socket_open(self, client, userdata, sock):
        # PUBACKs and commands are tiny: without this, Nagle's algorithm holds
        # one back until the broker's delayed ACK (up to ~40 ms) arrives.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._handle(Event.OPENED)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.config.mqtt.url, reason_code)
            self._handle(Event.REFUSED, f"broker refused: {reason_code}")
            return
        log.info("connected to %s as %s (session present: %s)", self.config.mqtt.url,
                 self.config.client_id, flags.session_present)
        if self._handle(Event.ACCEPTED) is not State.CONNECTING:
            return  # stopping
        client.subscribe(SUBSCRIPTIONS)
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)

    def _on_connect_fail(self, client, userdata):
        self._handle(Event.FAILED, "connection failed")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            log.error("MQTT broker refused a subscription: %s", reason_codes)
            self._handle(Event.REFUSED, f"subscription refused: {reason_codes}")
            return
        self._handle(Event.SUBSCRIBED)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self._handle(Event.LOST, f"connection lost: {reason_code}") is State.STOPPING:
            log.info("disconnected from %s: the gateway is stopping", self.config.mqtt.url)
        else:
            log.warning("disconnected from %s (%s); reconnecting with backoff", self.config.mqtt.url, reason_code)

    def _on_message(self, client, userdata, message):
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "replace")
        now = time.time()
        if message.qos == 0 and topic.endswith("/heartbeat") and self.inbox.qsize() > SHED_HEARTBEATS_ABOVE:
            self.heartbeats_shed += 1
            if now - self._last_shed_log >= SHED_LOG_EVERY_S:
                self._last_shed_log = now
                log.warning("%d messages wait to be stored: shedding heartbeats until the backlog clears "
                            "(%d so far; alarms and events are kept)", self.inbox.qsize(), self.heartbeats_shed)
            return
        # `lost`, which changes the generation, runs on this thread too: no lock needed to read it.
        self.inbox.put(Received(self._connection.generation, message.mid, message.qos, topic, message.payload, now))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        if self.on_published is not None:
            self.on_published(mid)
