# Virtual ESP32 `machine` module: the firmware's hardware calls land on
# simulated pins, PWM, ADC, I2C devices and watchdog (see vboard_core).
import time

import vboard_core as core


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 2

    def __init__(self, gpio, mode=-1, pull=-1, value=None):
        self.gpio = gpio
        self.mode = mode
        self.pull = pull
        self.level = 0
        if mode == Pin.IN and gpio not in core.inputs:
            # An open button on a pulled-up input reads high.
            core.inputs[gpio] = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.IN:
                core.poll()
                return core.inputs.get(self.gpio, 0)
            return self.level
        v = 1 if v else 0
        if v != self.level or self.mode != Pin.OUT:
            core.record("pin", self.gpio, v)
        self.level = v

    def irq(self, handler, trigger):
        # Called when the harness changes this input: the board sees it at its
        # next poll, which every hardware access of the firmware makes.
        core.irq[self.gpio] = (self, handler, trigger)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0):
        self.gpio = pin.gpio
        self._freq = freq
        self._duty = duty_u16
        core.record("pwm", self.gpio, self._freq, self._duty)

    def freq(self, f=None):
        if f is None:
            return self._freq
        if f != self._freq:
            self._freq = f
            core.record("pwm", self.gpio, self._freq, self._duty)

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        if d != self._duty:
            self._duty = d
            core.record("pwm", self.gpio, self._freq, self._duty)

    def deinit(self):
        self.duty_u16(0)


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3

    def __init__(self, pin, atten=ATTN_11DB):
        self.gpio = pin.gpio

    def read_uv(self):
        core.poll()
        return core.adc_uv.get(self.gpio, 1950000)


class I2C:
    def __init__(self, bus_id, scl=None, sda=None, freq=400000):
        self.devices = core.chips()

    def scan(self):
        return sorted(self.devices)

    def _device(self, addr):
        device = self.devices.get(addr)
        if device is None:
            raise OSError(19)  # ENODEV: no ACK from that address, as on the ESP32
        core.poll()
        if core.i2c_fault == "fail":
            raise OSError(5)  # EIO: no ACK mid-transfer, a loose wire
        if core.i2c_fault == "crash":
            raise RuntimeError("injected fault")
        return device

    def readfrom_mem(self, addr, reg, n):
        buf = bytearray(n)
        self._device(addr).readinto(reg, buf)
        return bytes(buf)

    def readfrom_mem_into(self, addr, reg, buf):
        # Into the caller's buffer: on the ESP32 this read allocates nothing,
        # and the firmware makes it 100 times a second on the shared heap.
        self._device(addr).readinto(reg, buf)

    def writeto_mem(self, addr, reg, data):
        self._device(addr).write(reg, data)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        core.record("wdt", "-", "start", timeout)
        self.feed()

    def feed(self):
        core.wdt_deadline = time.ticks_add(time.ticks_ms(), self.timeout)


class RTC:
    def datetime(self, dt=None):
        if dt is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        # The host clock is already right; record what NTP would have set.
        core.record("rtc", "-", *dt)


def reset():
    core.reset()
