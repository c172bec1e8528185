# The one pin map of the wearable (ESP32 WROOM-32 board). hardware/pinmap.md
# documents the wiring and tests/test_firmware_pinmap.py checks it against
# these numbers.
BUTTON = 27     # panic button to GND; active low, internal pull-up
BUZZER = 25     # piezo buzzer via NPN transistor; PWM
VIBRATION = 26  # vibration motor via logic-level MOSFET; high = on
LED = 2         # status LED; high = on
I2C_SDA = 21    # accelerometer SDA (LIS3DH or MPU-6050)
I2C_SCL = 22    # accelerometer SCL
BATTERY = 35    # battery via 100k/100k divider; ADC1, input-only pin
