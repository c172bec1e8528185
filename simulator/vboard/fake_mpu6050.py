# Register-level fake of the InvenSense MPU-6050 accelerometer, on the virtual board's I2C bus. It
# answers register reads/writes as the datasheet says and fills its output
# registers from the board's motion trace, so the firmware's real driver
# (firmware/mpu6050.py) is what gets tested.
import vboard_core as core
from vboard_core import clip

class Chip:
    """InvenSense MPU-6050, I2C address 0x68 (AD0 low). Register map RM-MPU-6000A."""
    ADDRESS = 0x68
    ACCEL_CONFIG = 0x1C
    ACCEL_XOUT_H = 0x3B
    PWR_MGMT_1 = 0x6B
    WHO_AM_I = 0x75
    SLEEP = 0x40

    def __init__(self):
        self.regs = bytearray(0x80)
        self.regs[self.WHO_AM_I] = 0x68
        self.regs[self.PWR_MGMT_1] = self.SLEEP  # asleep after power-on

    def _fill_outputs(self):
        if self.regs[self.PWR_MGMT_1] & self.SLEEP:
            return
        lsb_per_g = (16384, 8192, 4096, 2048)[(self.regs[self.ACCEL_CONFIG] >> 3) & 3]
        for i, mg in enumerate(core.accel_sample()):
            raw = clip(mg * lsb_per_g // 1000, -32768, 32767) & 0xFFFF
            self.regs[self.ACCEL_XOUT_H + 2 * i] = raw >> 8
            self.regs[self.ACCEL_XOUT_H + 2 * i + 1] = raw & 0xFF

    def read(self, reg, n):
        if reg == self.ACCEL_XOUT_H:
            self._fill_outputs()
        return [self.regs[(reg + i) & 0x7F] for i in range(n)]

    def write(self, reg, data):
        for i, b in enumerate(data):
            r = reg + i
            if r != self.WHO_AM_I:
                self.regs[r & 0x7F] = b
            core.record("i2c", "%#x" % self.ADDRESS, "%#x=%#x" % (r, b))
