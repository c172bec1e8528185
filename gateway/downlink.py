"""Commands to devices: "your alarm is stored", "help is coming", "stand down", reminders.

Durable, one mechanism for every command:

    transaction that decides it --store()--> outbox row, same transaction
    after the commit            --publish()--> paho, QoS 1 (mid remembered)
    broker's PUBACK             --on_publish(mid)--> writer thread marks it sent
    gateway start               --publish_unsent()--> every row not yet marked
                                  sent, queued before connecting, same id

So a command the desk's action caused reaches the broker even if the gateway
dies right after the commit, or the broker is down at the time. While the
gateway runs, paho itself re-sends an unacknowledged QoS 1 publish after a
reconnect (same packet, DUP flag); across a restart the outbox does. A repeat
carries the same command id, which the device ignores.

Each command id is GATEWAY:STARTMS:N, unique across restarts, and stored with
the row so a resend is the same command.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

import paho.mqtt.client as mqtt

from contract import protocol
from gateway.incidents import mark_delivered
from gateway.mqttlink import MqttLink
from gateway.store import Store

log = logging.getLogger("lonewatch.downlink")

# PUBACKs that arrive before publish() has returned the mid to us (the paho
# thread can be that quick); a few are plenty since each is claimed at once.
EARLY_ACKS_KEPT = 64


class Command:
    __slots__ = ("command_id", "site", "device", "cmd", "ref", "payload")

    def __init__(self, command_id, site, device, cmd, ref, payload):
        self.command_id = command_id
        self.site = site
        self.device = device
        self.cmd = cmd
        self.ref = ref
        self.payload = payload


class Downlink:
    def __init__(self, link: MqttLink, gateway_id: str, on_sent):
        """on_sent(command) is called on paho's network thread once the broker acknowledged it."""
        self._link = link
        self._prefix = f"{gateway_id}:{int(time.time() * 1000)}"
        self._seq = itertools.count(1)
        self._on_sent = on_sent
        self._lock = threading.Lock()
        self._in_flight: dict[int, Command] = {}  # paho mid -> command
        self._early_acks: dict[int, None] = {}  # mids acknowledged before we knew them
        self.sent_total: dict[str, int] = {cmd: 0 for cmd in protocol.COMMANDS}
        link.on_published = self._on_publish

    def store(self, store: Store, effects) -> None:
        """Write effects.commands to the outbox, in the caller's transaction."""
        if not effects.commands:
            return
        now = round(time.time(), 3)
        made = []
        for site, device, cmd, fields in effects.commands:
            command_id = f"{self._prefix}:{next(self._seq)}"
            body = {"v": protocol.VERSION, "id": command_id, "cmd": cmd, "time": now, **fields}
            made.append(Command(command_id, site, device, cmd, fields.get("ref"), protocol.encode(body)))
        store.add_commands(now, made)
        effects.commands = []
        effects.outbox += made

    def publish(self, commands: list[Command]) -> None:
        """Hand the commands to paho: sent now, or once (re)connected. After the commit only; any
        thread (the ingest's writer publishes what its batches decide, the event loop the rest)."""
        qos, retain = protocol.DELIVERY["cmd"]
        for command in commands:
            info = self._link.publish(protocol.topic(command.site, command.device, "cmd"), command.payload,
                                      qos, retain)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # Still in the outbox: the next start publishes it again.
                log.warning("could not queue %s for %s: %s", command.cmd, command.device, mqtt.error_string(info.rc))
                continue
            with self._lock:
                self.sent_total[command.cmd] += 1
                acked = info.mid in self._early_acks
                if acked:
                    del self._early_acks[info.mid]
                else:
                    self._in_flight[info.mid] = command
            if acked:
                self._on_sent(command)

    def publish_unsent(self, store: Store) -> int:
        """Queue every command the broker never acknowledged (a previous run's); call before connecting."""
        unsent = store.unsent_commands()
        self.publish([Command(r["command_id"], r["site"], r["device"], r["cmd"], r["ref"], r["payload"].encode())
                      for r in unsent])
        if unsent:
            log.info("re-publishing %d command(s) the broker never acknowledged", len(unsent))
        return len(unsent)

    def _on_publish(self, mid: int) -> None:
        with self._lock:
            command = self._in_flight.pop(mid, None)
            if command is None:
                # Our own status message, or a command whose publish() has not returned yet.
                self._early_acks[mid] = None
                while len(self._early_acks) > EARLY_ACKS_KEPT:
                    del self._early_acks[next(iter(self._early_acks))]
        if command is not None:
            self._on_sent(command)


def mark_sent(store: Store, effects, commands: list[Command], now: float) -> None:
    """The broker has these commands; in the caller's transaction. A 'delivered'
    command sets the incident's delivered_at the first time."""
    store.mark_commands_sent(now, [c.command_id for c in commands])
    delivered = [c.ref for c in commands if c.cmd == "delivered"]
    if delivered:
        mark_delivered(store, effects, delivered, now)
