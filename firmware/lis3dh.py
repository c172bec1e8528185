# ST LIS3DH driver: raw I2C register access, integer milli-g out, at +-8 g so an
# impact does not clip. The app imports only the configured chip's driver.
import struct

from sensor import check_who_am_i


class Sensor:
    ADDRESS = 0x18
    # CTRL_REG1: 50 Hz output data rate, normal power, X/Y/Z enabled.
    CTRL_REG1 = (0x20, 0x47)
    # CTRL_REG4: block data update, +-8 g, high resolution (12 bit, 4 mg/digit).
    CTRL_REG4 = (0x23, 0xA8)
    OUT_X_L_INCREMENT = 0x28 | 0x80
    MG_PER_DIGIT = 4

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        check_who_am_i(i2c, address, 0x0F, 0x33, "LIS3DH")
        for reg, value in (self.CTRL_REG1, self.CTRL_REG4):
            i2c.writeto_mem(address, reg, bytes((value,)))
        self.buf = bytearray(6)

    def read(self):
        self.i2c.readfrom_mem_into(self.address, self.OUT_X_L_INCREMENT, self.buf)
        x, y, z = struct.unpack("<hhh", self.buf)
        # 12-bit samples are left-justified in 16 bits.
        return ((x >> 4) * self.MG_PER_DIGIT, (y >> 4) * self.MG_PER_DIGIT,
                (z >> 4) * self.MG_PER_DIGIT)
