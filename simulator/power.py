"""The wearable's power budget: average current from duty cycles and
datasheet currents, and battery life from it. Also measures how much of the
time the firmware keeps the CPU busy, by running it under the MicroPython VM
on a virtual board.

Every current names its source. Where a figure is an estimate rather than a
datasheet value it says so: the budget is only as good as those, and a
measurement on a real board with a current meter replaces it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ESP32_DS = "ESP32 Series Datasheet (Espressif) v4.x"

# name: (mA, source)
CURRENTS = {
    "modem_sleep_160_idle": (27.0, ESP32_DS + ", 'Power Consumption by Power Modes': Modem-sleep, 160 MHz, dual-core, low end of 27-44 mA (CPU idle)"),
    "modem_sleep_160_busy": (44.0, ESP32_DS + ", same table: high end of 27-44 mA (CPU running)"),
    "modem_sleep_80_idle": (20.0, ESP32_DS + ", same table: Modem-sleep, 80 MHz, low end of 20-31 mA"),
    "modem_sleep_80_busy": (31.0, ESP32_DS + ", same table: high end of 20-31 mA"),
    "wifi_rx": (100.0, ESP32_DS + ", 'RF Power-Consumption Specifications': receive 802.11b/g/n, 95-100 mA"),
    "wifi_tx": (190.0, ESP32_DS + ", same table: transmit 802.11g 54 Mbps at 16 dBm, 190 mA"),
    "lis3dh_50hz": (0.011, "LIS3DH datasheet (ST DocID17530), Table 12: 50 Hz, 11 uA in normal and in "
                           "high-resolution mode (firmware/lis3dh.py: 12 bit)"),
    "mpu6050_accel_only": (0.5, "MPU-6000/6050 Product Specification rev 3.4, accelerometer specifications: normal "
                                "operating current 500 uA (firmware/mpu6050.py puts the gyros, 3.6 mA, in standby)"),
    "divider": (0.021, "2 x 100 kOhm across a 4.2 V cell (Ohm's law)"),
    "ldo_module": (0.04, "ME6211 datasheet (Microne): quiescent current 40 uA typ"),
    "ldo_devkitc": (5.0, "AMS1117 datasheet (Advanced Monolithic Systems): quiescent current 5 mA typ (DevKitC's regulator)"),
    "vibration": (80.0, "Vybronics VC1030B001F datasheet: rated current 80 mA at 3 V"),
    "buzzer": (20.0, "estimate: piezo driven at 2.7 kHz through a BC817 from 3.3 V, no datasheet current"),
}

# Estimates, not datasheet values (the datasheet gives currents, not times).
BEACON_LISTEN_MS = 3.0     # radio on around each DTIM beacon (estimate)
BEACON_INTERVAL_MS = 102.4  # 100 TU, the access points' usual default
EXCHANGE_MS = 20.0         # radio busy for one small MQTT exchange incl. its ACK (estimate)
# The host's CPU runs MicroPython bytecode much faster than a 160 MHz LX6:
# the share measured on the host is scaled by this (estimate; measure on a board
# to replace it).
ESP32_SLOWDOWN = 30.0
# CPU-busy share of the firmware on the host VM, measured by
# `lonewatch power --measure-s 60`: the highest of three runs on 2026-11-30
# (0.0067, 0.0070, 0.0075; hardware/bom.md has the runs before the button
# interrupt, 0.011-0.017). It counts the virtual board's own Python too.
MEASURED_HOST_SHARE = 0.0075
# Why the idle current is modem sleep's, never light sleep's (docs/firmware.md, "Power").
LIGHT_SLEEP = ("none: MicroPython's ESP32 build has no automatic light sleep (no FreeRTOS tickless idle), "
               "and machine.lightsleep() stops the VM and the radio, so the link and the 50 Hz sampling with it")


@dataclass
class Settings:
    battery_mah: float = 1000
    usable: float = 0.85          # of rated capacity down to the 3.3 V cut-off
    heartbeat_s: float = 30       # firmware/config.py defaults
    keepalive_s: float = 30
    cpu_mhz: int = 160            # MicroPython's ESP32 default clock
    wifi_powersave: bool = True   # firmware/board.py sets PM_POWERSAVE; False: MicroPython's PM_PERFORMANCE
    listen_interval: int = 3      # beacons per wake with PM_POWERSAVE (ESP-IDF's default listen interval)
    sensor: str = "lis3dh"
    board: str = "module"         # "devkitc": a dev kit's AMS1117 regulator
    host_cpu_share: float = MEASURED_HOST_SHARE
    slowdown: float = ESP32_SLOWDOWN
    alarms_per_day: float = 4
    prealarm_s: float = 20


def budget(s: Settings) -> dict:
    """Average current per consumer (mA), with its source, and the hours."""
    mhz = "160" if s.cpu_mhz >= 160 else "80"
    idle, busy = CURRENTS["modem_sleep_%s_idle" % mhz][0], CURRENTS["modem_sleep_%s_busy" % mhz][0]
    cpu_share = min(1.0, s.host_cpu_share * s.slowdown * (160 / s.cpu_mhz))
    rx, tx = CURRENTS["wifi_rx"][0], CURRENTS["wifi_tx"][0]
    beacons = BEACON_INTERVAL_MS * (s.listen_interval if s.wifi_powersave else 1)
    # Uplink per second: a heartbeat every heartbeat_s, a PINGREQ/PINGRESP every keepalive/2.
    exchanges = 1 / s.heartbeat_s + 2 / s.keepalive_s
    per_day = 86400.0
    alarm_s = s.alarms_per_day * s.prealarm_s / per_day
    rows = [
        ("CPU + modem sleep, idle", idle, "modem_sleep_%s_idle" % mhz),
        ("CPU busy (%.1f %% of the time)" % (100 * cpu_share), cpu_share * (busy - idle), "modem_sleep_%s_busy" % mhz),
        ("Wi-Fi beacons (every %.0f ms)" % beacons, (rx - idle) * BEACON_LISTEN_MS / beacons, "wifi_rx"),
        ("Wi-Fi heartbeats + keepalive (%.3f/s)" % exchanges, exchanges * EXCHANGE_MS / 1000 * ((rx + tx) / 2 - idle), "wifi_tx"),
        ("accelerometer", CURRENTS["lis3dh_50hz" if s.sensor == "lis3dh" else "mpu6050_accel_only"][0],
         "lis3dh_50hz" if s.sensor == "lis3dh" else "mpu6050_accel_only"),
        ("battery divider", CURRENTS["divider"][0], "divider"),
        ("regulator", CURRENTS["ldo_" + s.board][0], "ldo_" + s.board),
        ("alarm feedback (%g/day, %g s)" % (s.alarms_per_day, s.prealarm_s),
         alarm_s * (CURRENTS["vibration"][0] / 2 + CURRENTS["buzzer"][0] / 2), "vibration"),
    ]
    total = sum(ma for _, ma, _ in rows)
    return {"rows": [(label, ma, CURRENTS[key][1]) for label, ma, key in rows],
            "cpu_share": cpu_share, "ma": total,
            "hours": s.battery_mah * s.usable / total}


def hours(s: Settings, **changes) -> float:
    return budget(Settings(**{**s.__dict__, **changes}))["hours"]


def measure_host_cpu_share(seconds: float, workdir: Path | None = None) -> float:
    """Run the firmware connected to a local mosquitto, a still wearer on
    the virtual board, and return the VM's CPU time / wall time. The virtual
    board's own Python (which is C or hardware on a device) is counted too,
    so this overstates the firmware's share."""
    from simulator.board import VirtualDevice, device_config

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\n" % port)
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            dev = VirtualDevice(Path(tmp) / "dev", device_config(port, keepalive_s=30), port, device_heap_kb=96)
            dev.start(timeout=30)
            try:
                time.sleep(2)  # past boot and connect
                before, t0 = _cpu_s(dev.proc.pid), time.monotonic()
                time.sleep(seconds)
                return (_cpu_s(dev.proc.pid) - before) / (time.monotonic() - t0)
            finally:
                dev.stop()
        finally:
            broker.terminate()
            broker.wait(10)


def _cpu_s(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
