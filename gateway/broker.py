"""The embedded MQTT broker (amqtt, in-process) used by `lonewatch demo`.

Production sites run mosquitto (deploy/mosquitto.conf); the embedded broker
exists so that a demo or a developer needs nothing but Python.
"""

from __future__ import annotations

import logging

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class _SubscriptionTable(dict):
    """amqtt 0.12's table of subscriptions (topic filter -> sessions), looped
    over a snapshot. amqtt loops over it with awaits inside, when it hands a
    connecting client the retained messages and when it broadcasts a message;
    a client subscribing meanwhile changed the table's size, which ended the
    connecting client's connection or the broadcast half-way. (Seen at every
    demo start: the gateway and the simulated fleet connect at once.)"""

    def __iter__(self):
        return iter(list(dict.keys(self)))

    def items(self):
        return list(dict.items(self))


class _Broker(Broker):
    """amqtt 0.12 hands every client that connects the retained messages of
    every subscription in the broker, not only of its own: each wearable
    connecting received every device's retained status (the gateway
    subscribes to them all), so a fleet of N starting together cost the
    broker N x N publishes (a million at 1,000 devices, the event loop busy
    for minutes). A client gets the retained messages of its own
    subscriptions only."""

    async def _publish_retained_messages_for_subscription(self, subscription, session) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(s.client_id == session.client_id for s, _ in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """amqtt on 127.0.0.1: anonymous access, no $SYS chatter, loopback only."""

    def __init__(self, port: int = 1883, host: str = "127.0.0.1"):
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Keep offline QoS 1 sessions for a day: the gateway's persistent
            # session is what lets a restarted gateway receive what it missed.
            "session_expiry_interval": 86400,
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = _Broker(config)
        self._broker._subscriptions = _SubscriptionTable()
        try:
            await self._broker.start()
        except Exception as exc:
            self._broker = None
            raise RuntimeError(
                f"cannot start the embedded MQTT broker on {self.host}:{self.port} ({exc}); "
                "is another broker using that port? Choose one with --mqtt-port"
            ) from exc
        log.info("embedded MQTT broker listening on %s", self.url)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
