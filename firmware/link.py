# Keeps the device connected and empties the outbox, in order, one record
# at a time: an event leaves the outbox when its PUBACK has arrived, an alarm
# when the gateway's `delivered` does (App.on_command); an alarm with no
# `delivered` within `delivered_timeout_s` of its PUBACK is sent again.
# Wi-Fi join, broker connect with capped exponential backoff, birth and
# will, command subscription. The button and sensor tasks never wait on
# anything here; they add to the outbox and set `wake`.
import asyncio
import time
from micropython import const

import mqtt
import protocol
import version
from outbox import ALARM, HEARTBEAT

_WIFI_JOIN_MS = const(15000)
_WIFI_POLL_MS = const(250)
# Idle check interval: how quickly a dropped Wi-Fi is noticed with nothing to send.
_IDLE_CHECK_MS = const(1000)


class Link:
    def __init__(self, cfg, boot, wlan, box, on_command, on_online=None):
        self.cfg = cfg
        self.boot = boot
        self.wlan = wlan
        self.box = box
        self.on_online = on_online
        self.wake = asyncio.Event()
        self.online = False
        dev = cfg["device"]
        self.topic_base = protocol.ROOT + "/" + cfg["site"] + "/" + dev + "/"
        will = protocol.encode(protocol.status(dev, "offline"))
        self.client = mqtt.Client(
            dev, keepalive_s=cfg["keepalive_s"], user=cfg["mqtt_user"],
            password=cfg["mqtt_password"], clean_session=False,
            will=(self.topic_base + "status", will, 1, True),
            on_message=on_command)
        self.attempts = 0
        self.tls = None
        if not cfg["mqtt_tls"]:
            print("link: INSECURE: plain MQTT to %s, mqtt_tls is false" % cfg["mqtt_host"])
            return
        try:
            self._tls()
        except (OSError, ValueError) as e:
            # Every connect tries again, and fails with this, in the log.
            print("link: CA %s unusable: %r" % (cfg["mqtt_ca"], e))

    def _backoff_ms(self):
        # 1, 2, 4 ... s capped, with jitter so a site's devices do not
        # reconnect in lock-step after the broker comes back.
        base = min(1000 << min(self.attempts, 10), self.cfg["backoff_max_s"] * 1000)
        return base // 2 + (time.ticks_us() % (base // 2 + 1))

    async def _join_wifi(self):
        if self.wlan.isconnected():
            return True
        print("link: joining Wi-Fi %s" % self.cfg["wifi_ssid"])
        try:
            self.wlan.connect(self.cfg["wifi_ssid"], self.cfg["wifi_password"])
        except OSError as e:
            print("link: Wi-Fi connect failed: %r" % (e,))
            return False
        waited = 0
        while waited < _WIFI_JOIN_MS:
            await asyncio.sleep_ms(_WIFI_POLL_MS)
            waited += _WIFI_POLL_MS
            if self.wlan.isconnected():
                return True
        return False

    async def run(self):
        while True:
            if await self._join_wifi() and await self._connect():
                self.attempts = 0
                self.online = True
                if self.on_online:
                    self.on_online()
                await self._drain()
                self.online = False
                self.client.close()
                print("link: offline, %d record(s) waiting" % len(self.box))
            self.attempts += 1
            await asyncio.sleep_ms(self._backoff_ms())

    async def _connect(self):
        cfg = self.cfg
        timeout = cfg["connect_timeout_s"] * 1000
        try:
            present = await self.client.connect(cfg["mqtt_host"], cfg["mqtt_port"], timeout, self._tls())
            # Subscribing again is harmless and covers a broker that lost the session.
            await self.client.subscribe(self.topic_base + "cmd", 1, timeout)
            birth = protocol.status(cfg["device"], "online", version.FW, time.ticks_ms())
            await self.client.publish(self.topic_base + "status", protocol.encode(birth),
                                      1, True, timeout)
        except (OSError, ValueError, mqtt.MQTTError, asyncio.TimeoutError) as e:
            # ValueError: a CA file mbedTLS cannot parse.
            print("link: connect to %s:%d failed: %r" % (cfg["mqtt_host"], cfg["mqtt_port"], e))
            self.client.close()
            return False
        print("link: online (session %s)" % ("resumed" if present else "new"))
        return True

    def _tls(self):
        # One context for every connection, made at boot: it is about 3 KB in
        # one piece, which the heap has then but, fragmented by the running
        # firmware, no longer has at the first connect (MemoryError, 96 KB
        # scenario). The CA it parses lives in mbedTLS's own allocations, not
        # on this heap. The frozen ssl module is loaded only with TLS on.
        if self.tls is None and self.cfg["mqtt_tls"]:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=self.cfg["mqtt_ca"])
            self.tls = ctx
        return self.tls

    async def _drain(self):
        timeout = self.cfg["puback_timeout_s"] * 1000
        while self.client.connected:
            if not self.wlan.isconnected():
                print("link: Wi-Fi lost")
                return
            record = self.box.next_to_send(time.ticks_ms())
            if record is None:
                # Idle, or only alarms waiting for `delivered`: look again
                # within _IDLE_CHECK_MS, so an overdue one goes out again.
                self.wake.clear()
                try:
                    await asyncio.wait_for_ms(self.wake.wait(), _IDLE_CHECK_MS)
                except asyncio.TimeoutError:
                    pass
                continue
            key, kind, rid, uptime_ms, payload, resend = record
            if resend:
                print("link: no delivered for alarm %d within %d s, sending it again"
                      % (key, self.cfg["delivered_timeout_s"]))
            if kind == HEARTBEAT:
                data = payload.encode()
            else:
                data = protocol.encode_for_send(
                    payload, protocol.sent_uptime(rid, uptime_ms, time.ticks_ms(), self.boot))
            qos = protocol.QOS[kind]
            try:
                await self.client.publish(self.topic_base + kind, data, qos, False, timeout)
            except (OSError, mqtt.MQTTError) as e:
                print("link: publish of %s %d failed: %r" % (kind, key, e))
                return
            self.box.sent(key, time.ticks_ms())
            if kind == ALARM:
                print("link: broker has alarm %d, awaiting delivered" % key)
            elif kind != HEARTBEAT:
                print("link: sent %s %d" % (kind, key))
