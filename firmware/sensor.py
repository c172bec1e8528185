# Accelerometer selection. Each chip's driver is its own module (lis3dh.py,
# mpu6050.py) with a class Sensor(i2c): the chip samples at 50 Hz into its
# FIFO, waiting() says how many samples it holds, read() takes the oldest in
# integer milli-g, and overruns counts the times it was found full. Only the
# configured driver is imported, to spare heap.
CHIPS = ("lis3dh", "mpu6050")


class SensorError(Exception):
    pass


def check_who_am_i(i2c, addr, reg, expected, name):
    try:
        got = i2c.readfrom_mem(addr, reg, 1)[0]
    except OSError:
        raise SensorError("%s not found on I2C at %#x (bus has %s)" % (name, addr, i2c.scan()))
    if got != expected:
        raise SensorError("%s at %#x answered WHO_AM_I %#x, expected %#x" % (name, addr, got, expected))


def open_sensor(name, i2c):
    return __import__(name).Sensor(i2c)
