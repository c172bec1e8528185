# Register-level fake of the InvenSense MPU-6050 accelerometer, on the virtual board's I2C bus. It
# answers register reads/writes as the datasheet says and fills its output
# registers from the board's motion trace, so the firmware's real driver
# (firmware/mpu6050.py) is what gets tested. Every write is recorded, so tests
# can check the power settings the driver chose.
from micropython import const

import vboard_core as core
from vboard_core import clip

# Register map RM-MPU-6000A. Constants, not names: the fake shares the
# device-sized heap and its table of names with the firmware.
_ACCEL_CONFIG = const(0x1C)
_ACCEL_XOUT_H = const(0x3B)
_PWR_MGMT_1 = const(0x6B)
_PWR_MGMT_2 = const(0x6C)
_WHO_AM_I = const(0x75)
_SLEEP = const(0x40)
_STBY_XA = const(0x20)  # then STBY_YA 0x10, STBY_ZA 0x08


class Chip:
    """InvenSense MPU-6050, I2C address 0x68 (AD0 low)."""
    ADDRESS = 0x68

    def __init__(self):
        self.regs = bytearray(0x80)
        self.regs[_WHO_AM_I] = 0x68
        self.regs[_PWR_MGMT_1] = _SLEEP  # asleep after power-on

    def _fill_outputs(self):
        if self.regs[_PWR_MGMT_1] & _SLEEP:
            return
        lsb_per_g = (16384, 8192, 4096, 2048)[(self.regs[_ACCEL_CONFIG] >> 3) & 3]
        for i, mg in enumerate(core.accel_sample()):
            if self.regs[_PWR_MGMT_2] & (_STBY_XA >> i):
                continue  # an axis in standby keeps its last value
            raw = clip(mg * lsb_per_g // 1000, -32768, 32767) & 0xFFFF
            self.regs[_ACCEL_XOUT_H + 2 * i] = raw >> 8
            self.regs[_ACCEL_XOUT_H + 2 * i + 1] = raw & 0xFF

    def read(self, reg, n):
        if reg == _ACCEL_XOUT_H:
            self._fill_outputs()
        return [self.regs[(reg + i) & 0x7F] for i in range(n)]

    def write(self, reg, data):
        for i, b in enumerate(data):
            r = reg + i
            if r != _WHO_AM_I:
                self.regs[r & 0x7F] = b
            core.record("i2c", "%#x" % self.ADDRESS, "%#x=%#x" % (r, b))
