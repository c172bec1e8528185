# Accelerometer selection. Each chip's driver is its own module (lis3dh.py,
# mpu6050.py) with a class Sensor(i2c) whose read() returns integer milli-g;
# only the configured one is imported, to spare heap.
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
