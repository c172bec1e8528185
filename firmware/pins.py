# The one pin map of the wearable (ESP32 WROOM-32 board). hardware/pinmap.md
# is checked against this table by tests/test_firmware_pinmap.py.
# name: (gpio, direction, note)
PINS = {
    "button": (27, "in", "panic button to GND, active low, internal pull-up"),
    "buzzer": (25, "pwm", "piezo buzzer through NPN transistor"),
    "vibration": (26, "out", "vibration motor through MOSFET, high = on"),
    "led": (2, "out", "status LED, high = on"),
    "i2c_sda": (21, "i2c", "accelerometer SDA (LIS3DH or MPU-6050)"),
    "i2c_scl": (22, "i2c", "accelerometer SCL"),
    "battery": (35, "adc", "battery through 100k/100k divider (input-only pin, ADC1)"),
}


def gpio(name):
    return PINS[name][0]
