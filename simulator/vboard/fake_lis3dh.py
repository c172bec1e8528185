# Register-level fake of the ST LIS3DH accelerometer, on the virtual board's I2C bus. It
# answers register reads/writes as the datasheet says and fills its output
# registers from the board's motion trace, so the firmware's real driver
# (firmware/lis3dh.py) is what gets tested.
import vboard_core as core
from vboard_core import clip

class Chip:
    """ST LIS3DH, I2C address 0x18 (SA0 low). Datasheet DocID17530."""
    ADDRESS = 0x18
    WHO_AM_I = 0x0F
    CTRL_REG1 = 0x20
    CTRL_REG4 = 0x23
    OUT_X_L = 0x28
    AUTO_INCREMENT = 0x80  # MSB of the sub-address

    def __init__(self):
        self.regs = bytearray(0x40)
        self.regs[self.WHO_AM_I] = 0x33
        self.regs[self.CTRL_REG1] = 0x07  # power-down, axes enabled

    def _fill_outputs(self):
        if self.regs[self.CTRL_REG1] >> 4 == 0:
            return  # power-down: output registers keep their last value
        ctrl4 = self.regs[self.CTRL_REG4]
        fs = (ctrl4 >> 4) & 3
        if ctrl4 & 0x08:  # high resolution, 12 bit left-justified
            mg_per_digit = (1, 2, 4, 12)[fs]
            shift, bits = 4, 12
        else:  # normal mode, 10 bit
            mg_per_digit = (4, 8, 16, 48)[fs]
            shift, bits = 6, 10
        lim = 1 << (bits - 1)
        for i, mg in enumerate(core.accel_sample()):
            raw = clip(int(mg / mg_per_digit), -lim, lim - 1) << shift
            raw &= 0xFFFF
            self.regs[self.OUT_X_L + 2 * i] = raw & 0xFF
            self.regs[self.OUT_X_L + 2 * i + 1] = raw >> 8

    def read(self, reg, n):
        increment = reg & self.AUTO_INCREMENT
        reg &= 0x7F
        if reg == self.OUT_X_L or reg == self.OUT_X_L + 1:
            self._fill_outputs()
        out = []
        for i in range(n):
            out.append(self.regs[(reg + (i if increment else 0)) & 0x3F])
        return out

    def write(self, reg, data):
        increment = reg & self.AUTO_INCREMENT
        reg &= 0x7F
        for i, b in enumerate(data):
            r = reg + (i if increment else 0)
            if r != self.WHO_AM_I:
                self.regs[r & 0x3F] = b
            core.record("i2c", "%#x" % self.ADDRESS, "%#x=%#x" % (r, b))
