"""Firmware in the loop: the wearable does what the power budget
(`lonewatch power`, simulator/power.py) assumes. The Wi-Fi station sleeps
through beacons, the accelerometer runs in its cheapest mode that still gives
the detector what it needs, and the button is not polled while nobody presses
it, without losing a press or letting the watchdog reset an idle device."""

from firmware_harness import desk_for, device_for  # noqa: F401


def settings(dev, kind, chip="-"):
    """What the firmware wrote to the virtual board, in order: Wi-Fi config
    and connect calls, or a chip's register writes ("0x20=0x47")."""
    return [" ".join(values) for _, k, gpio, values in dev.outputs() if k == kind and gpio == chip]


def test_the_station_asks_for_modem_sleep_through_beacons_before_it_joins(mosquitto, device_for):
    dev = device_for(mosquitto)
    wifi = settings(dev, "wifi")
    assert "pm 2" in wifi                                   # WLAN.PM_POWERSAVE
    assert wifi.index("pm 2") < wifi.index("connect lab-wifi")


def test_the_lis3dh_samples_at_50_hz_with_12_bits_at_its_normal_mode_current(mosquitto, device_for):
    dev = device_for(mosquitto, sensor="lis3dh")
    writes = settings(dev, "i2c", "0x18")
    ctrl_reg1 = int(next(w for w in writes if w.startswith("0x20=")).split("=")[1], 16)
    ctrl_reg4 = int(next(w for w in writes if w.startswith("0x23=")).split("=")[1], 16)
    assert ctrl_reg1 >> 4 == 0b0100                         # 50 Hz
    assert not ctrl_reg1 & 0x08                             # not 8-bit low-power: not_worn needs < 6 mg
    assert ctrl_reg4 & 0x08 and (ctrl_reg4 >> 4) & 3 == 2   # high resolution, +-8 g


def test_the_mpu6050_runs_its_accelerometer_with_the_gyros_in_standby(mosquitto, device_for):
    dev = device_for(mosquitto, sensor="mpu6050")
    writes = settings(dev, "i2c", "0x68")
    assert "0x6c=0x7" in writes                             # PWR_MGMT_2: STBY_XG, YG, ZG
    pwr_mgmt_1 = [int(w.split("=")[1], 16) for w in writes if w.startswith("0x6b=")]
    assert pwr_mgmt_1[-1] & 0x07 == 0                       # clocked from its own oscillator, not a gyro
    assert not pwr_mgmt_1[-1] & 0x40                        # and awake (a fall on it: test_firmware_man_down)


def test_presses_shorter_than_the_button_sampling_still_raise_panic(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    # Released within the same millisecond: no sample can see the button down,
    # only its interrupt.
    dev.presses(3, ms=0, gap_ms=300)
    desk.wait_for("alarm", type="panic")
    assert len(desk.of("alarm")) == 1


def test_an_idle_device_is_not_reset_by_its_watchdog_and_still_answers_a_hold(mosquitto, desk_for,
                                                                              device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, wdt_ms=2000)               # the supervisor wants progress within 1 s
    desk.wait_for("status", state="online")
    dev.wait_console("heap: used")                          # 5 s after the supervisor started
    assert not [line for line in dev.console if "supervisor" in line or "vboard: watchdog" in line]
    assert dev.boots == 1 and dev.alive()
    dev.press(2300)
    desk.wait_for("alarm", type="panic")
