# The ESP32 board: its peripherals from the one pin map, and the bad-config
# mode that needs nothing else from the firmware.
import time

import machine
import network

import feedback
import patterns
import pins


class Board:
    def __init__(self):
        Pin = machine.Pin
        self.button = Pin(pins.BUTTON, Pin.IN, Pin.PULL_UP)
        self.buzzer, self.vibration, self.led = _feedback_outputs()
        self.adc = machine.ADC(Pin(pins.BATTERY), atten=machine.ADC.ATTN_11DB)
        self.i2c = machine.I2C(0, scl=Pin(pins.I2C_SCL), sda=Pin(pins.I2C_SDA), freq=400000)
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)

    def pressed(self):
        return self.button.value() == 0  # active low


def _feedback_outputs():
    Pin = machine.Pin
    buzzer = machine.PWM(Pin(pins.BUZZER, Pin.OUT), freq=2700, duty_u16=0)
    vibration = Pin(pins.VIBRATION, Pin.OUT, value=0)
    led = Pin(pins.LED, Pin.OUT, value=0)
    return buzzer, vibration, led


def show_bad_config(message):
    """No valid config: say why on the REPL and blink/beep BAD_CONFIG until
    someone fixes it. No watchdog is started, so this is not a boot loop."""
    print("CONFIG ERROR: %s" % message)
    print("Fix config.json on the device (mpremote fs cp config.json :config.json) and reset.")
    buzzer, vibration, led = _feedback_outputs()
    rounds = 0
    while True:
        for hz, vib, on, ms in patterns.steps(patterns.BAD_CONFIG):
            buzzer.freq(hz or 2700)
            buzzer.duty_u16(feedback.DUTY_ON if hz else 0)
            vibration.value(vib)
            led.value(on)
            time.sleep_ms(ms)
        rounds += 1
        if rounds % 30 == 0:
            print("CONFIG ERROR: %s" % message)
