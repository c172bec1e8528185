"""Firmware in the loop, health: the heartbeat carries battery, signal,
uptime and firmware version; a low battery warns the wearer; losing the
Wi-Fi access point shows the no-connection pattern and the device rejoins
and reconnects when it is back."""

from firmware_harness import buzzer_tones, desk_for, device_for, now_ms, pulses  # noqa: F401


def test_heartbeat_reports_battery_signal_uptime_and_firmware(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    device_for(mosquitto)
    hb = desk.wait_for("heartbeat")
    assert hb.qos == 0
    assert hb.body["battery_mv"] == 3900 and hb.body["battery_pct"] == 70
    assert hb.body["rssi"] == -55 and hb.body["fw"] == "0.1.0"
    assert hb.body["outbox"] == 0 and hb.body["worn"] is True
    assert "location" not in hb.body


def test_low_battery_gives_the_low_battery_chirps(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, start=False)
    dev.battery_mv = 3350
    t0 = now_ms()
    dev.start()
    assert desk.wait_for("heartbeat").body["battery_pct"] <= 15
    dev.wait_console("heap: used")  # a few seconds in: the chirps have played
    assert buzzer_tones(dev, t0)[:2] == [1800, 1800]


def test_wifi_out_of_range_blinks_no_connection_then_rejoins(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    mark = dev.mark()
    t0 = now_ms()
    dev.wifi(False)
    dev.wait_console("link: Wi-Fi lost", after=mark)
    dev.press(2300)
    dev.wait_console("queued alarm", after=mark)
    desk.wait_for("status", state="offline", timeout=15)  # the broker's Last Will
    assert pulses(dev, "led", t0) >= 2
    dev.wifi(True)
    desk.wait_for("alarm", type="panic", timeout=20)
    assert desk.of("status")[-1].body["state"] == "online"
