# ST LIS3DH driver: raw I2C register access, integer milli-g out, at +-8 g so an
# impact does not clip. The app imports only the configured chip's driver.
#
# Power: at 50 Hz the chip draws 6 uA in low-power mode (8 bit) and 11 uA in
# normal (10 bit) and high-resolution (12 bit) mode alike (datasheet
# DocID17530, Table 12). High resolution is 4 mg per digit at +-8 g; the
# detector needs it, since a device put down is told from a still wearer by
# motion under 6 mg rms (mandown `not_worn_mg`), which the 64 mg steps of
# low-power mode cannot show. The 5 uA saved would be 0.02 % of the budget.
#
# The chip keeps its samples in its 32-level FIFO (stream mode: the newest 32,
# 0.64 s at 50 Hz), so a read that comes late, behind a flash write or a TLS
# handshake on the one core, still gets every sample; the app reads waiting()
# samples each time round.
import struct

from micropython import const

from sensor import check_who_am_i

_CTRL_REG1 = const(0x20)
_ODR_50HZ_XYZ = const(0x47)       # 50 Hz output data rate, LPen=0, X/Y/Z enabled
_CTRL_REG4 = const(0x23)
_BDU_8G_HIGH_RES = const(0xA8)    # block data update, +-8 g, high resolution (12 bit)
_CTRL_REG5 = const(0x24)
_FIFO_EN = const(0x40)
_FIFO_CTRL_REG = const(0x2E)
_STREAM_MODE = const(0x80)
_FIFO_SRC_REG = const(0x2F)
_OVRN_FIFO = const(0x40)          # full: the next sample replaces the oldest
_EMPTY = const(0x20)
_FSS = const(0x1F)                # unread levels (31 and OVRN_FIFO when all 32 are)
_OUT_X_L_INCREMENT = const(0x28 | 0x80)
_MG_PER_DIGIT = const(4)


class Sensor:
    ADDRESS = 0x18

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        check_who_am_i(i2c, address, 0x0F, 0x33, "LIS3DH")
        for reg, value in ((_CTRL_REG1, _ODR_50HZ_XYZ), (_CTRL_REG4, _BDU_8G_HIGH_RES),
                           (_CTRL_REG5, _FIFO_EN), (_FIFO_CTRL_REG, _STREAM_MODE)):
            i2c.writeto_mem(address, reg, bytes((value,)))
        self.buf = bytearray(6)
        self.src = bytearray(1)
        self.overruns = 0  # times the FIFO was found full: samples may be lost

    def waiting(self):
        """How many samples the FIFO holds for read()."""
        self.i2c.readfrom_mem_into(self.address, _FIFO_SRC_REG, self.src)
        src = self.src[0]
        if src & _EMPTY:
            return 0
        if src & _OVRN_FIFO:
            self.overruns += 1
            return (src & _FSS) + 1
        return src & _FSS

    def read(self):
        """The oldest sample in the FIFO, in milli-g."""
        self.i2c.readfrom_mem_into(self.address, _OUT_X_L_INCREMENT, self.buf)
        x, y, z = struct.unpack("<hhh", self.buf)
        # 12-bit samples are left-justified in 16 bits.
        return (x >> 4) * _MG_PER_DIGIT, (y >> 4) * _MG_PER_DIGIT, (z >> 4) * _MG_PER_DIGIT
