# ST LIS3DH driver: raw I2C register access, integer milli-g out, at +-8 g so an
# impact does not clip. The app imports only the configured chip's driver.
#
# Power: at 50 Hz the chip draws 6 uA in low-power mode (8 bit) and 11 uA in
# normal (10 bit) and high-resolution (12 bit) mode alike (datasheet
# DocID17530, Table 12). High resolution is 4 mg per digit at +-8 g; the
# detector needs it, since a device put down is told from a still wearer by
# motion under 6 mg rms (mandown `not_worn_mg`), which the 64 mg steps of
# low-power mode cannot show. The 5 uA saved would be 0.02 % of the budget.
import struct

from micropython import const

from sensor import check_who_am_i

_CTRL_REG1 = const(0x20)
_ODR_50HZ_XYZ = const(0x47)       # 50 Hz output data rate, LPen=0, X/Y/Z enabled
_CTRL_REG4 = const(0x23)
_BDU_8G_HIGH_RES = const(0xA8)    # block data update, +-8 g, high resolution (12 bit)
_OUT_X_L_INCREMENT = const(0x28 | 0x80)
_MG_PER_DIGIT = const(4)


class Sensor:
    ADDRESS = 0x18

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        check_who_am_i(i2c, address, 0x0F, 0x33, "LIS3DH")
        for reg, value in ((_CTRL_REG1, _ODR_50HZ_XYZ), (_CTRL_REG4, _BDU_8G_HIGH_RES)):
            i2c.writeto_mem(address, reg, bytes((value,)))
        self.buf = bytearray(6)

    def read(self):
        self.i2c.readfrom_mem_into(self.address, _OUT_X_L_INCREMENT, self.buf)
        x, y, z = struct.unpack("<hhh", self.buf)
        # 12-bit samples are left-justified in 16 bits.
        return (x >> 4) * _MG_PER_DIGIT, (y >> 4) * _MG_PER_DIGIT, (z >> 4) * _MG_PER_DIGIT
