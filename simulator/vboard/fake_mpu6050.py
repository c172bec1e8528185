# Register-level fake of the InvenSense MPU-6050 accelerometer, on the virtual board's I2C bus. It
# answers register reads/writes as the datasheet says and fills its output
# registers, and its 1024-byte FIFO, from the board's motion trace on its own
# sampling clock, so the firmware's real driver (firmware/mpu6050.py) is what
# gets tested. Every write is recorded, so tests can check the power settings
# the driver chose.
import time

from micropython import const

import vboard_core as core
from vboard_core import clip

# Register map RM-MPU-6000A. Constants, not names: the fake shares the
# device-sized heap and its table of names with the firmware.
_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_ACCEL_CONFIG = const(0x1C)
_FIFO_EN = const(0x23)
_ACCEL_FIFO_EN = const(0x08)
_ACCEL_XOUT_H = const(0x3B)
_USER_CTRL = const(0x6A)
_USER_FIFO_EN = const(0x40)
_FIFO_RESET = const(0x04)
_PWR_MGMT_1 = const(0x6B)
_PWR_MGMT_2 = const(0x6C)
_FIFO_COUNT_H = const(0x72)
_FIFO_COUNT_L = const(0x73)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)
_SLEEP = const(0x40)
_STBY_XA = const(0x20)  # then STBY_YA 0x10, STBY_ZA 0x08
_FIFO_BYTES = const(1024)


class Chip:
    """InvenSense MPU-6050, I2C address 0x68 (AD0 low)."""
    ADDRESS = 0x68

    def __init__(self):
        self.regs = bytearray(0x80)
        self.regs[_WHO_AM_I] = 0x68
        self.regs[_PWR_MGMT_1] = _SLEEP  # asleep after power-on
        self.data = bytearray(_FIFO_BYTES)  # the FIFO, a ring of bytes
        self.head = 0                       # its oldest byte
        self.count = 0
        self.next = time.ticks_ms()         # when the next sample is due

    def fill(self):
        """Sample what fell due since the last look: into the FIFO when it
        takes the accelerometer, else the latest into the output registers."""
        if self.regs[_PWR_MGMT_1] & _SLEEP:
            self.next = time.ticks_ms()
        elif self.regs[_USER_CTRL] & _USER_FIFO_EN and self.regs[_FIFO_EN] & _ACCEL_FIFO_EN:
            # The sample rate divides the gyro output rate: 8 kHz with the
            # low-pass off (DLPF_CFG 0 or 7), else 1 kHz.
            step = self.regs[_SMPLRT_DIV] + 1
            if self.regs[_CONFIG] & 7 in (0, 7):
                if step % 8:
                    raise NotImplementedError  # a rate of no whole milliseconds
                step //= 8
            core.fill(self, step, _FIFO_BYTES // 6 + 1)
        else:
            self.next = time.ticks_ms()
            self._fill_outputs(core.accel_sample(self.next))

    def _fill_outputs(self, mg):
        lsb_per_g = (16384, 8192, 4096, 2048)[(self.regs[_ACCEL_CONFIG] >> 3) & 3]
        for i in range(3):
            if self.regs[_PWR_MGMT_2] & (_STBY_XA >> i):
                continue  # an axis in standby keeps its last value
            raw = clip(mg[i] * lsb_per_g // 1000, -32768, 32767) & 0xFFFF
            self.regs[_ACCEL_XOUT_H + 2 * i] = raw >> 8
            self.regs[_ACCEL_XOUT_H + 2 * i + 1] = raw & 0xFF

    def store(self, mg):
        """One sample into the output registers and on into the FIFO, over
        its oldest bytes when it is full (a sample may then start mid-way)."""
        self._fill_outputs(mg)
        for i in range(6):
            if self.count == _FIFO_BYTES:
                self.head = (self.head + 1) % _FIFO_BYTES
                self.count -= 1
            self.data[(self.head + self.count) % _FIFO_BYTES] = self.regs[_ACCEL_XOUT_H + i]
            self.count += 1

    def readinto(self, reg, buf):
        if reg in (_ACCEL_XOUT_H, _FIFO_R_W):
            core.read()
        if reg in (_ACCEL_XOUT_H, _FIFO_COUNT_H):
            self.fill()
        if reg == _FIFO_COUNT_H:
            self.regs[_FIFO_COUNT_H] = self.count >> 8
            self.regs[_FIFO_COUNT_L] = self.count & 0xFF
        for i in range(len(buf)):
            if reg != _FIFO_R_W:
                buf[i] = self.regs[(reg + i) & 0x7F]
            elif self.count:  # a burst here reads on through the FIFO
                buf[i] = self.data[self.head]
                self.head = (self.head + 1) % _FIFO_BYTES
                self.count -= 1
            else:
                buf[i] = 0

    def write(self, reg, data):
        self.fill()  # what the chip took under the settings it had
        for i, b in enumerate(data):
            r = reg + i
            core.record("i2c", "%#x" % self.ADDRESS, "%#x=%#x" % (r, b))
            if r == _USER_CTRL and b & _FIFO_RESET:
                if not b & _USER_FIFO_EN:  # a reset takes effect with the FIFO off
                    self.count = 0
                b &= ~_FIFO_RESET  # clears itself
            if r != _WHO_AM_I:
                self.regs[r & 0x7F] = b
