# InvenSense MPU-6050 driver: raw I2C register access, integer milli-g out, at +-8 g so an
# impact does not clip. The app imports only the configured chip's driver.
#
# Only the accelerometer is used, so the gyros are put in standby: they draw
# 3.6 mA of the chip's 3.9 mA (product specification PS-MPU-6000A-00 rev
# 3.4). With them off the clock must come from the internal 8 MHz
# oscillator, not a gyro PLL. The chip's own low-power cycle mode wakes at
# 1.25, 5, 20 or 40 Hz only, short of the detector's 50 Hz, so it stays unused.
import struct

from micropython import const

from sensor import check_who_am_i

# Registers and the values written, in this order: power and clock first.
_PWR_MGMT_1 = const(0x6B)
_INTERNAL_CLOCK_NO_TEMP = const(0x08)  # awake, 8 MHz oscillator, temperature sensor off
_PWR_MGMT_2 = const(0x6C)
_GYROS_STANDBY = const(0x07)           # STBY_XG | STBY_YG | STBY_ZG; accelerometer axes on
_CONFIG = const(0x1A)
_LOW_PASS_44HZ = const(0x03)           # digital low-pass ~44 Hz, below Nyquist of 50 Hz sampling
_ACCEL_CONFIG = const(0x1C)
_RANGE_8G = const(0x10)                # +-8 g: 4096 LSB/g
_ACCEL_XOUT_H = const(0x3B)
_LSB_PER_G = const(4096)


class Sensor:
    ADDRESS = 0x68

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        check_who_am_i(i2c, address, 0x75, 0x68, "MPU-6050")
        for reg, value in ((_PWR_MGMT_1, _INTERNAL_CLOCK_NO_TEMP), (_PWR_MGMT_2, _GYROS_STANDBY),
                           (_CONFIG, _LOW_PASS_44HZ), (_ACCEL_CONFIG, _RANGE_8G)):
            i2c.writeto_mem(address, reg, bytes((value,)))
        self.buf = bytearray(6)

    def read(self):
        self.i2c.readfrom_mem_into(self.address, _ACCEL_XOUT_H, self.buf)
        x, y, z = struct.unpack(">hhh", self.buf)
        return x * 1000 // _LSB_PER_G, y * 1000 // _LSB_PER_G, z * 1000 // _LSB_PER_G
