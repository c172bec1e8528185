# The ESP32 board: its peripherals from the one pin map.
import machine
import network

import pins


class Board:
    def __init__(self):
        Pin = machine.Pin
        self.button = Pin(pins.BUTTON, Pin.IN, Pin.PULL_UP)
        self.buzzer, self.vibration, self.led = feedback_outputs()
        self.adc = machine.ADC(Pin(pins.BATTERY), atten=machine.ADC.ATTN_11DB)
        self.i2c = machine.I2C(0, scl=Pin(pins.I2C_SCL), sda=Pin(pins.I2C_SDA), freq=400000)
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)

    def pressed(self):
        return self.button.value() == 0  # active low


def feedback_outputs():
    Pin = machine.Pin
    buzzer = machine.PWM(Pin(pins.BUZZER, Pin.OUT), freq=2700, duty_u16=0)
    vibration = Pin(pins.VIBRATION, Pin.OUT, value=0)
    led = Pin(pins.LED, Pin.OUT, value=0)
    return buzzer, vibration, led
