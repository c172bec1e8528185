# Register-level fake of the ST LIS3DH accelerometer, on the virtual board's I2C bus. It
# answers register reads/writes as the datasheet says and fills its output
# registers from the board's motion trace, so the firmware's real driver
# (firmware/lis3dh.py) is what gets tested. Every write is recorded, so tests
# can check the power settings the driver chose.
from micropython import const

import vboard_core as core
from vboard_core import clip

# Datasheet DocID17530. Constants, not names: the fake shares the
# device-sized heap and its table of names with the firmware.
_WHO_AM_I = const(0x0F)
_CTRL_REG1 = const(0x20)
_CTRL_REG4 = const(0x23)
_OUT_X_L = const(0x28)
_AUTO_INCREMENT = const(0x80)  # MSB of the sub-address


class Chip:
    """ST LIS3DH, I2C address 0x18 (SA0 low)."""
    ADDRESS = 0x18

    def __init__(self):
        self.regs = bytearray(0x40)
        self.regs[_WHO_AM_I] = 0x33
        self.regs[_CTRL_REG1] = 0x07  # power-down, axes enabled

    def _fill_outputs(self):
        if self.regs[_CTRL_REG1] >> 4 == 0:
            return  # power-down: output registers keep their last value
        ctrl4 = self.regs[_CTRL_REG4]
        fs = (ctrl4 >> 4) & 3
        if self.regs[_CTRL_REG1] & 0x08:  # LPen: low-power mode, 8 bit
            mg_per_digit = (16, 32, 64, 192)[fs]
            shift, bits = 8, 8
        elif ctrl4 & 0x08:  # high resolution, 12 bit left-justified
            mg_per_digit = (1, 2, 4, 12)[fs]
            shift, bits = 4, 12
        else:  # normal mode, 10 bit
            mg_per_digit = (4, 8, 16, 48)[fs]
            shift, bits = 6, 10
        lim = 1 << (bits - 1)
        for i, mg in enumerate(core.accel_sample()):
            # Truncated toward zero in integers: a float is a heap object here.
            raw = mg // mg_per_digit if mg >= 0 else -(-mg // mg_per_digit)
            raw = clip(raw, -lim, lim - 1) << shift
            raw &= 0xFFFF
            self.regs[_OUT_X_L + 2 * i] = raw & 0xFF
            self.regs[_OUT_X_L + 2 * i + 1] = raw >> 8

    def read(self, reg, n):
        increment = reg & _AUTO_INCREMENT
        reg &= 0x7F
        if reg == _OUT_X_L or reg == _OUT_X_L + 1:
            self._fill_outputs()
        out = []
        for i in range(n):
            out.append(self.regs[(reg + (i if increment else 0)) & 0x3F])
        return out

    def write(self, reg, data):
        increment = reg & _AUTO_INCREMENT
        reg &= 0x7F
        for i, b in enumerate(data):
            r = reg + (i if increment else 0)
            if r != _WHO_AM_I:
                self.regs[r & 0x3F] = b
            core.record("i2c", "%#x" % self.ADDRESS, "%#x=%#x" % (r, b))
