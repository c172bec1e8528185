"""Load for the gateway benchmark, run as separate processes so the load does
not share a CPU or a GIL with what it measures.

  python -m simulator.loadgen burst --port P --count N
      publish N valid QoS 1 messages as fast as the broker takes them
      (--mix fleet: events and alarms as a fleet sends them; --mix alarms: alarms only)
  python -m simulator.loadgen heartbeats --port P --devices 1000 --seconds S
      1,000 devices, each on its own MQTT connection, heartbeating every 30 s

The heartbeat fleet speaks raw MQTT 3.1.1 (CONNECT and QoS 0 PUBLISH only) on
asyncio streams: a thousand paho clients would need a thousand threads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import sys
import time

import paho.mqtt.client as mqtt

from contract import protocol


# What devices send at QoS 1 over a lone-work shift, in proportion: each
# device starts a session, checks in, has a cancelled pre-alarm now and then,
# ends the session; one message in ten is an alarm.
FLEET_MIX = ("session_start", "check_in", "check_in", "pre_alarm_started", "pre_alarm_cancelled",
             "check_in", "check_in", "alarm", "check_in", "session_end")
MIXES = ("fleet", "alarms")


def burst_message(n: int, run: str, devices: int, mix: str) -> tuple[str, bytes]:
    device = f"burst-{n % devices:04d}"
    what = "alarm" if mix == "alarms" else FLEET_MIX[(n // devices) % len(FLEET_MIX)]
    body = {"v": 1, "device": device, "id": f"{device}:{run}:{n}", "type": "panic",
            "uptime_ms": 1000 + n, "sent_uptime_ms": 1000 + n}
    if what == "alarm":
        return protocol.topic("bench", device, "alarm"), protocol.encode(body)
    body["type"] = what
    if what.startswith("pre_alarm"):
        body["cause"] = "fall"
    if what == "pre_alarm_started":
        body["countdown_s"] = 20
    if what == "session_start":
        body["duration_s"] = 3600
    return protocol.topic("bench", device, "event"), protocol.encode(body)


def burst(host: str, port: int, count: int, devices: int, run: str, mix: str) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-burst-{run}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    infos = [client.publish(*burst_message(n, run, devices, mix), qos=1) for n in range(count)]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, keepalive: int) -> bytes:
    body = _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _utf8(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def publish_qos0_packet(topic: str, payload: bytes) -> bytes:
    body = _utf8(topic) + payload
    return b"\x30" + _remaining_length(len(body)) + body


async def _heartbeating_device(host: str, port: int, device: str, interval: float, until: float,
                               rng: random.Random, sent: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(connect_packet(device, keepalive=int(interval * 2)))
    await writer.drain()
    connack = await reader.readexactly(4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"{device}: broker refused the connection ({connack.hex()})")
    started = time.monotonic()
    await asyncio.sleep(rng.random() * interval)  # spread the fleet over the interval
    while time.monotonic() < until:
        body = {"v": 1, "device": device, "uptime_ms": int((time.monotonic() - started) * 1000),
                "battery_pct": 80, "fw": "load-1"}
        writer.write(publish_qos0_packet(protocol.topic("bench", device, "heartbeat"), protocol.encode(body)))
        await writer.drain()
        sent[0] += 1
        await asyncio.sleep(interval)
    writer.write(b"\xe0\x00")  # DISCONNECT
    await writer.drain()
    writer.close()


async def heartbeats(host: str, port: int, devices: int, interval: float, seconds: float) -> int:
    rng = random.Random(1)
    until = time.monotonic() + seconds
    sent = [0]
    tasks = []
    for n in range(devices):
        tasks.append(asyncio.create_task(
            _heartbeating_device(host, port, f"hb-{n:04d}", interval, until, rng, sent)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the broker's accept queue
    print(json.dumps({"connected": devices}), flush=True)
    await asyncio.gather(*tasks)
    return sent[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.loadgen")
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("burst")
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--count", type=int, default=10000)
    b.add_argument("--devices", type=int, default=100)
    b.add_argument("--run", default=str(int(time.time())), help="stands for the boot counter in alarm ids")
    b.add_argument("--mix", choices=MIXES, default="fleet")
    h = sub.add_parser("heartbeats")
    h.add_argument("--host", default="127.0.0.1")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--devices", type=int, default=1000)
    h.add_argument("--interval", type=float, default=30.0)
    h.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.what == "burst":
        burst(args.host, args.port, args.count, args.devices, args.run, args.mix)
    else:
        sent = asyncio.run(heartbeats(args.host, args.port, args.devices, args.interval, args.seconds))
        print(json.dumps({"heartbeats_sent": sent}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
