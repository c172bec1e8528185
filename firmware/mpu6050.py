# InvenSense MPU-6050 driver: raw I2C register access, integer milli-g out, at +-8 g so an
# impact does not clip. The app imports only the configured chip's driver.
#
# Only the accelerometer is used, so the gyros are put in standby: they draw
# 3.6 mA of the chip's 3.9 mA (product specification PS-MPU-6000A-00 rev
# 3.4). With them off the clock must come from the internal 8 MHz
# oscillator, not a gyro PLL. The chip's own low-power cycle mode wakes at
# 1.25, 5, 20 or 40 Hz only, short of the detector's 50 Hz, so it stays unused.
#
# The chip samples at 50 Hz into its 1024-byte FIFO (170 samples, 3.4 s), so a
# read that comes late, behind a flash write or a TLS handshake on the one
# core, still gets every sample; the app reads waiting() samples each time round.
import struct

from micropython import const

from sensor import check_who_am_i

# Registers and the values written, in this order: power and clock first.
_PWR_MGMT_1 = const(0x6B)
_INTERNAL_CLOCK_NO_TEMP = const(0x08)  # awake, 8 MHz oscillator, temperature sensor off
_PWR_MGMT_2 = const(0x6C)
_GYROS_STANDBY = const(0x07)           # STBY_XG | STBY_YG | STBY_ZG; accelerometer axes on
_CONFIG = const(0x1A)
# Accelerometer bandwidth 21 Hz, under the 25 Hz Nyquist of 50 Hz sampling (the
# recordings the detector was tuned on were averaged 4:1 from 200 Hz, alike).
_LOW_PASS_21HZ = const(0x04)
_SMPLRT_DIV = const(0x19)
_50HZ_FROM_1KHZ = const(19)            # with the low-pass on, 1 kHz / (1 + 19)
_ACCEL_CONFIG = const(0x1C)
_RANGE_8G = const(0x10)                # +-8 g: 4096 LSB/g
_FIFO_EN = const(0x23)
_ACCEL_INTO_FIFO = const(0x08)         # ACCEL_FIFO_EN: X, Y, Z high and low bytes, 6 per sample
_USER_CTRL = const(0x6A)
_FIFO_RESET = const(0x04)              # empties the FIFO, written while it is off
_FIFO_ON = const(0x40)
_FIFO_COUNT_H = const(0x72)
_FIFO_R_W = const(0x74)
_FIFO_BYTES = const(1024)
_LSB_PER_G = const(4096)


class Sensor:
    ADDRESS = 0x68

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        check_who_am_i(i2c, address, 0x75, 0x68, "MPU-6050")
        for reg, value in ((_PWR_MGMT_1, _INTERNAL_CLOCK_NO_TEMP), (_PWR_MGMT_2, _GYROS_STANDBY),
                           (_CONFIG, _LOW_PASS_21HZ), (_SMPLRT_DIV, _50HZ_FROM_1KHZ),
                           (_ACCEL_CONFIG, _RANGE_8G), (_FIFO_EN, _ACCEL_INTO_FIFO)):
            i2c.writeto_mem(address, reg, bytes((value,)))
        self.buf = bytearray(6)
        self.count = bytearray(2)
        self.reset = bytes((_FIFO_RESET,))
        self.on = bytes((_FIFO_ON,))
        self.overruns = 0  # times the FIFO was found full: samples lost
        self._empty_fifo()

    def _empty_fifo(self):
        self.i2c.writeto_mem(self.address, _USER_CTRL, self.reset)
        self.i2c.writeto_mem(self.address, _USER_CTRL, self.on)

    def waiting(self):
        """How many samples the FIFO holds for read()."""
        self.i2c.readfrom_mem_into(self.address, _FIFO_COUNT_H, self.count)
        n = (self.count[0] << 8) | self.count[1]
        if n > _FIFO_BYTES - 6:
            # Full: the chip writes on over its oldest bytes, so a sample may
            # now start mid-way. Start again from an empty FIFO.
            self._empty_fifo()
            self.overruns += 1
            return 0
        return n // 6

    def read(self):
        """The oldest sample in the FIFO, in milli-g."""
        self.i2c.readfrom_mem_into(self.address, _FIFO_R_W, self.buf)
        x, y, z = struct.unpack(">hhh", self.buf)
        return x * 1000 // _LSB_PER_G, y * 1000 // _LSB_PER_G, z * 1000 // _LSB_PER_G
