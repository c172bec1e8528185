"""Commands to devices: "your alarm is stored", "help is coming", "stand down", reminders.

Published QoS 1 on lonewatch/v1/SITE/DEVICE/cmd. Each command has its own id
(the device ignores a repeat), built from the gateway id, the start time and
a counter so ids stay unique across gateway restarts.
"""

from __future__ import annotations

import itertools
import logging
import time

import paho.mqtt.client as mqtt

from gateway import protocol

log = logging.getLogger("lonewatch.downlink")


class Downlink:
    def __init__(self, client: mqtt.Client, gateway_id: str):
        self._client = client
        self._prefix = f"{gateway_id}:{int(time.time() * 1000)}"
        self._seq = itertools.count(1)
        self.sent_total: dict[str, int] = {cmd: 0 for cmd in protocol.COMMANDS}

    def send(self, site: str, device: str, cmd: str, **fields) -> dict:
        """Queue the command with paho (sent now, or after a reconnect); return its body."""
        body = {"v": protocol.VERSION, "id": f"{self._prefix}:{next(self._seq)}", "cmd": cmd,
                "time": round(time.time(), 3), **fields}
        qos, retain = protocol.DELIVERY["cmd"]
        info = self._client.publish(protocol.topic(site, device, "cmd"), protocol.encode(body), qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("could not queue %s for %s: %s", cmd, device, mqtt.error_string(info.rc))
        self.sent_total[cmd] += 1
        return body
