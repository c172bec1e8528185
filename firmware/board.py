# The ESP32 board: its peripherals from the one pin map.
import time

import machine
import network

import pins


class Board:
    def __init__(self):
        Pin = machine.Pin
        self.button = Pin(pins.BUTTON, Pin.IN, Pin.PULL_UP)
        # ticks_ms of the first press edge the button task has not taken yet
        # (App.button_task): the interrupt keeps a press that falls between
        # two samples, so the task can sample slowly while nothing happens.
        self.down_at = None

        def down(pin):
            if self.down_at is None:
                self.down_at = time.ticks_ms()
        self.button.irq(down, Pin.IRQ_FALLING)
        self.buzzer, self.vibration, self.led = feedback_outputs()
        self.adc = machine.ADC(Pin(pins.BATTERY), atten=machine.ADC.ATTN_11DB)
        self.i2c = machine.I2C(0, scl=Pin(pins.I2C_SCL), sda=Pin(pins.I2C_SDA), freq=400000)
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        # Modem sleep through beacons (ESP-IDF WIFI_PS_MAX_MODEM): the radio
        # wakes at once to send, so alarms leave as fast as before, but it
        # hears the access point only every listen interval (3 beacons, about
        # 0.3 s): a command such as `delivered` waits up to that long.
        self.wlan.config(pm=self.wlan.PM_POWERSAVE)

    def pressed(self):
        return self.button.value() == 0  # active low


def feedback_outputs():
    Pin = machine.Pin
    buzzer = machine.PWM(Pin(pins.BUZZER, Pin.OUT), freq=2700, duty_u16=0)
    vibration = Pin(pins.VIBRATION, Pin.OUT, value=0)
    led = Pin(pins.LED, Pin.OUT, value=0)
    return buzzer, vibration, led
