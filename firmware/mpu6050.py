# InvenSense MPU-6050 driver: raw I2C register access, integer milli-g out, at +-8 g so an
# impact does not clip. The app imports only the configured chip's driver.
import struct

from sensor import check_who_am_i


class Sensor:
    ADDRESS = 0x68
    PWR_MGMT_1 = (0x6B, 0x01)    # wake up, clock from the X gyro PLL
    CONFIG = (0x1A, 0x03)        # digital low-pass ~44 Hz, below Nyquist of 50 Hz sampling
    ACCEL_CONFIG = (0x1C, 0x10)  # +-8 g: 4096 LSB/g
    ACCEL_XOUT_H = 0x3B
    LSB_PER_G = 4096

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        check_who_am_i(i2c, address, 0x75, 0x68, "MPU-6050")
        for reg, value in (self.PWR_MGMT_1, self.CONFIG, self.ACCEL_CONFIG):
            i2c.writeto_mem(address, reg, bytes((value,)))
        self.buf = bytearray(6)

    def read(self):
        self.i2c.readfrom_mem_into(self.address, self.ACCEL_XOUT_H, self.buf)
        x, y, z = struct.unpack(">hhh", self.buf)
        g = self.LSB_PER_G
        return x * 1000 // g, y * 1000 // g, z * 1000 // g
