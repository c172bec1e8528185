# Register-level fake of the ST LIS3DH accelerometer, on the virtual board's I2C bus. It
# answers register reads/writes as the datasheet says and fills its output
# registers, and its 32-level FIFO, from the board's motion trace on its own
# sampling clock, so the firmware's real driver (firmware/lis3dh.py) is what
# gets tested. Every write is recorded, so tests can check the power settings
# the driver chose.
import time

from micropython import const

import vboard_core as core
from vboard_core import clip

# Datasheet DocID17530. Constants, not names: the fake shares the
# device-sized heap and its table of names with the firmware.
_WHO_AM_I = const(0x0F)
_CTRL_REG1 = const(0x20)
_CTRL_REG4 = const(0x23)
_CTRL_REG5 = const(0x24)
_FIFO_EN = const(0x40)
_OUT_X_L = const(0x28)
_FIFO_CTRL_REG = const(0x2E)
_FIFO_SRC_REG = const(0x2F)
_BYPASS = const(0)  # FIFO_CTRL_REG FM[1:0]
_STREAM = const(2)  # keeps the newest 32 samples
_OVRN_FIFO = const(0x40)
_EMPTY = const(0x20)
_AUTO_INCREMENT = const(0x80)  # MSB of the sub-address
_LEVELS = const(32)
# Sample periods of the output data rates (CTRL_REG1 ODR[3:0]) the fake
# keeps: the whole-millisecond ones, 1-200 Hz.
_ODR_MS = const((0, 1000, 100, 40, 20, 10, 5))


class Chip:
    """ST LIS3DH, I2C address 0x18 (SA0 low)."""
    ADDRESS = 0x18

    def __init__(self):
        self.regs = bytearray(0x40)
        self.regs[_WHO_AM_I] = 0x33
        self.regs[_CTRL_REG1] = 0x07  # power-down, axes enabled
        self.data = bytearray(6 * _LEVELS)  # the FIFO: output-register bytes, a ring
        self.head = 0                       # its oldest level
        self.count = 0
        self.next = time.ticks_ms()         # when the next sample is due

    def fill(self):
        """Into the FIFO, the samples taken since the last look; False
        unless it is streaming (bypass: output registers hold the latest)."""
        if self.regs[_CTRL_REG5] & _FIFO_EN:
            mode = self.regs[_FIFO_CTRL_REG] >> 6
            if mode not in (_BYPASS, _STREAM):
                raise NotImplementedError  # FIFO and stream-to-FIFO modes
            period = _ODR_MS[self.regs[_CTRL_REG1] >> 4]
            if mode == _STREAM and period:
                core.fill(self, period, _LEVELS)
                return True
        self.next = time.ticks_ms()
        return False

    def store(self, mg):
        """One sample into the output registers and the FIFO, over its oldest
        level when it is full."""
        self._fill_outputs(mg)
        if self.count == _LEVELS:
            self.head = (self.head + 1) % _LEVELS
            self.count -= 1
        at = 6 * ((self.head + self.count) % _LEVELS)
        for i in range(6):  # not a slice: that is a new object per sample
            self.data[at + i] = self.regs[_OUT_X_L + i]
        self.count += 1

    def _fill_outputs(self, mg):
        """Milli-g into the output registers, as the current mode holds them."""
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
        for i in range(3):
            # Truncated toward zero in integers: a float is a heap object here.
            raw = mg[i] // mg_per_digit if mg[i] >= 0 else -(-mg[i] // mg_per_digit)
            raw = clip(raw, -lim, lim - 1) << shift
            raw &= 0xFFFF
            self.regs[_OUT_X_L + 2 * i] = raw & 0xFF
            self.regs[_OUT_X_L + 2 * i + 1] = raw >> 8

    def readinto(self, reg, buf):
        increment = reg & _AUTO_INCREMENT
        reg &= 0x7F
        if reg == _OUT_X_L and self.regs[_CTRL_REG1] >> 4:  # powered: a new sample
            core.read()
            if not self.fill():
                self._fill_outputs(core.accel_sample(time.ticks_ms()))
            elif self.count:  # the oldest level; an empty FIFO leaves the last read
                at = 6 * self.head
                for i in range(6):
                    self.regs[_OUT_X_L + i] = self.data[at + i]
                self.head = (self.head + 1) % _LEVELS
                self.count -= 1
        elif reg == _FIFO_SRC_REG:
            self.fill()
            n = self.count
            self.regs[_FIFO_SRC_REG] = (_OVRN_FIFO | (n - 1) if n == _LEVELS else n) if n else _EMPTY
        for i in range(len(buf)):
            buf[i] = self.regs[(reg + (i if increment else 0)) & 0x3F]

    def write(self, reg, data):
        self.fill()  # what the chip took under the settings it had
        increment = reg & _AUTO_INCREMENT
        reg &= 0x7F
        for i, b in enumerate(data):
            r = reg + (i if increment else 0)
            if r != _WHO_AM_I:
                self.regs[r & 0x3F] = b
            core.record("i2c", "%#x" % self.ADDRESS, "%#x=%#x" % (r, b))
        if not self.fill():  # bypass: the FIFO stays empty
            self.count = 0
