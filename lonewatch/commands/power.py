"""The wearable's power budget: average current from duty cycles and
datasheet currents (each with its source), hours per battery size, which
settings trade battery for response, and, last, one JSON line.

Computed for what the firmware does: MicroPython's default 160 MHz clock,
Wi-Fi PM_POWERSAVE (modem sleep, awake every third beacon), the
accelerometer in its low-power setting, no light sleep (MicroPython cannot
here), the button read every 100 ms when idle. The CPU-busy share is the one
measured under the MicroPython VM (--measure-s N measures again), scaled to
a 160 MHz ESP32 by an estimated factor."""

from __future__ import annotations

import argparse
import json

from simulator import power

BATTERIES = (500, 750, 1000, 1500, 2000)


def add_arguments(parser) -> None:
    s = power.Settings()
    parser.add_argument("--battery-mah", type=float, default=s.battery_mah, help="rated capacity (default %(default)s)")
    parser.add_argument("--usable", type=float, default=s.usable, help="share of it usable to the cut-off (default %(default)s)")
    parser.add_argument("--heartbeat-s", type=float, default=s.heartbeat_s, help="device config heartbeat_s (default %(default)s)")
    parser.add_argument("--keepalive-s", type=float, default=s.keepalive_s, help="device config keepalive_s (default %(default)s)")
    parser.add_argument("--cpu-mhz", type=int, choices=(80, 160), default=s.cpu_mhz, help="CPU clock (default %(default)s)")
    parser.add_argument("--wifi-powersave", action=argparse.BooleanOptionalAction, default=s.wifi_powersave,
                        help="Wi-Fi PM_POWERSAVE, as the firmware sets it: awake every %d beacons "
                             "(--no-wifi-powersave: PM_PERFORMANCE, every beacon)" % s.listen_interval)
    parser.add_argument("--sensor", choices=("lis3dh", "mpu6050"), default=s.sensor)
    parser.add_argument("--board", choices=("module", "devkitc"), default=s.board,
                        help="module: own board with an ME6211 regulator; devkitc: ESP32-DevKitC (AMS1117)")
    parser.add_argument("--alarms-per-day", type=float, default=s.alarms_per_day)
    parser.add_argument("--cpu-share", type=float, default=None,
                        help="CPU-busy share measured on a real board (0-1); replaces the simulator's")
    parser.add_argument("--measure-s", type=float, default=0,
                        help="measure the firmware's CPU share under the MicroPython VM for this many seconds first")


def run(args) -> int:
    s = power.Settings(battery_mah=args.battery_mah, usable=args.usable, heartbeat_s=args.heartbeat_s,
                       keepalive_s=args.keepalive_s, cpu_mhz=args.cpu_mhz, wifi_powersave=args.wifi_powersave,
                       sensor=args.sensor, board=args.board, alarms_per_day=args.alarms_per_day)
    source = "measured under the MicroPython VM (simulator/power.py MEASURED_HOST_SHARE) x %g" % s.slowdown
    if args.measure_s:
        s.host_cpu_share = power.measure_host_cpu_share(args.measure_s)
        source = "measured now for %g s under the MicroPython VM x %g" % (args.measure_s, s.slowdown)
        print("firmware CPU share on this host: %.4f" % s.host_cpu_share)
    if args.cpu_share is not None:
        s.host_cpu_share, s.slowdown = args.cpu_share, 1.0
        source = "given (--cpu-share)"
    b = power.budget(s)
    print("Average current, %d MHz, Wi-Fi %s, %s, %s board:" % (
        s.cpu_mhz, "PM_POWERSAVE" if s.wifi_powersave else "PM_PERFORMANCE", s.sensor, s.board))
    for label, ma, src in b["rows"]:
        print("  %-42s %8.3f mA   %s" % (label, ma, src))
    print("  %-42s %8.3f mA" % ("total", b["ma"]))
    print("CPU-busy share %.1f %%: %s (an estimate of the ESP32's speed; measure on a board)." % (100 * b["cpu_share"], source))
    print("Radio-on times are estimates: %g ms per beacon, %g ms per MQTT exchange." % (power.BEACON_LISTEN_MS, power.EXCHANGE_MS))
    print("Light sleep: %s." % power.LIGHT_SLEEP)
    print()
    print("Hours at %d %% of the rated capacity:" % (100 * s.usable))
    for mah in sorted(set(BATTERIES) | {s.battery_mah}):
        print("  %6d mAh  %6.1f h" % (mah, power.hours(s, battery_mah=mah)))
    print()
    print("What trades battery for response (hours on %d mAh; now %.1f h):" % (s.battery_mah, b["hours"]))
    trades = (
        ("--no-wifi-powersave (commands such as `delivered` reach the device up to ~0.2 s sooner)",
         dict(wifi_powersave=False)),
        ("--cpu-mhz 80 (detector and TLS handshakes take twice as long)", dict(cpu_mhz=80)),
        ("--heartbeat-s 120 (a dead device is noticed after 3 missed = 6 min, not 90 s)", dict(heartbeat_s=120)),
        ("--keepalive-s 120 (a dropped link is noticed ~3 min later; alarms still go at once)", dict(keepalive_s=120)),
        ("--sensor mpu6050 (its accelerometer draws 45 x the LIS3DH's; no response gained)", dict(sensor="mpu6050")),
        ("--board devkitc (a dev kit's regulator; no response gained)", dict(board="devkitc")),
    )
    for text, change in trades:
        print("  %-86s %6.1f h" % (text, power.hours(s, **change)))
    print(json.dumps({"battery_mah": s.battery_mah, "hours": round(b["hours"], 1), "ma": round(b["ma"], 2),
                      "cpu_share": round(b["cpu_share"], 4), "cpu_mhz": s.cpu_mhz,
                      "wifi_powersave": s.wifi_powersave, "sensor": s.sensor, "board": s.board}))
    return 0
