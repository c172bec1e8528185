# The virtual board's shared state, for the firmware running under the unix
# MicroPython VM. The host harness (simulator/board.py) drives it:
#   control: UDP datagrams to 127.0.0.1:$LW_VBOARD_PORT, one command each
#       pin GPIO LEVEL        set an input pin's electrical level (0/1)
#       accel PATH LOOP       play a trace file (int16 little-endian x, y, z
#                             milli-g per 50 Hz sample), looped or held at its end
#       adc GPIO MICROVOLTS   voltage at an ADC pin
#       wifi 0|1              whether the access point is in range
#       rssi DBM
#       i2c ok|fail|crash     fault injection: bus errors (OSError) or a bug
#                             surfacing from the driver (RuntimeError)
#       stall MS              the next hardware access holds the firmware's one
#                             core for MS ms, as a blocking flash erase or TLS
#                             handshake would; the sensors keep sampling
#   outputs: appended to $LW_VBOARD_LOG, one line per change:
#       EPOCH_MS KIND GPIO VALUE...
# Every hardware access polls the control socket, so the state the firmware
# reads is as fresh as its own sampling.
import os
import select
import socket
import struct
import time

from micropython import const

# Constants, not names: the board shares the firmware's table of names.
_SAMPLE_MS = const(20)  # the traces' 50 Hz

inputs = {}      # gpio -> level, as wired (button pulled up = 1)
irq = {}         # gpio -> (pin, handler, trigger) of machine.Pin.irq
adc_uv = {}      # gpio -> microvolts
wifi_in_range = True
rssi = -55
# The trace stays in its file and is read a sample at a time: the host VM's
# heap stands for the device's, so the simulation keeps off it.
_REST = const((0, -1000, 0))
trace = None  # open file
trace_samples = 0
trace_start = 0
trace_loop = True
wdt_deadline = None
i2c_fault = "ok"
stall = 0  # ms the next hardware access takes

_port = os.getenv("LW_VBOARD_PORT")
# Open for the whole run: on the ESP32 a pin write allocates nothing, and
# this fake of C code shares the firmware's heap, so a change costs no file
# object and no formatted line there.
_log = open(os.getenv("LW_VBOARD_LOG") or "vboard.log", "a")
_sock = None
_ready = select.poll()
if _port:
    _sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _sock.bind(socket.getaddrinfo("127.0.0.1", int(_port))[0][-1])
    _sock.setblocking(False)
    _ready.register(_sock, select.POLLIN)


def clip(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def chips():
    """The chips on the I2C bus, by address: $LW_VBOARD_SENSOR names the
    accelerometer fitted (lis3dh, mpu6050, none). Only its fake is loaded."""
    which = os.getenv("LW_VBOARD_SENSOR") or "lis3dh"
    if which == "none":
        return {}
    chip = __import__("fake_" + which).Chip()
    return {chip.ADDRESS: chip}


def now_ms():
    return time.time_ns() // 1000000


def record(kind, gpio, *values):
    # Written in pieces (unbuffered: the host reads the log as it grows).
    _log.write(str(now_ms()))
    for v in (kind, gpio) + values:
        _log.write(" ")
        _log.write(v if type(v) is str else str(v))
    _log.write("\n")


def _command(words):
    global wifi_in_range, rssi, trace, trace_samples, trace_start, trace_loop, i2c_fault, stall
    if words[0] == "pin":
        gpio, level = int(words[1]), int(words[2])
        edge = level != inputs.get(gpio)
        inputs[gpio] = level
        if edge and gpio in irq:
            pin, handler, trigger = irq[gpio]
            # As the ESP32 port runs a soft interrupt handler: in the VM's own
            # thread, between two bytecodes of whatever runs now.
            if trigger & (1 if level else 2):  # IRQ_RISING, IRQ_FALLING
                handler(pin)
    elif words[0] == "accel":
        if trace:
            trace.close()
        trace = open(words[1], "rb")
        trace_samples = os.stat(words[1])[6] // 6
        trace_loop = words[2] == "1"
        trace_start = time.ticks_ms()
    elif words[0] == "adc":
        adc_uv[int(words[1])] = int(words[2])
    elif words[0] == "wifi":
        wifi_in_range = words[1] == "1"
    elif words[0] == "rssi":
        rssi = int(words[1])
    elif words[0] == "i2c":
        i2c_fault = words[1]
    elif words[0] == "stall":
        stall = int(words[1])
    record("ctl", "-", " ".join(words))


def _initial_state():
    # Inputs as they are at power-on ($LW_VBOARD_INIT: commands split by ";").
    for command in (os.getenv("LW_VBOARD_INIT") or "").split(";"):
        if command.strip():
            _command(command.split())


def poll():
    global stall
    if stall:
        time.sleep_ms(stall)
        stall = 0
    if wdt_deadline is not None and time.ticks_diff(time.ticks_ms(), wdt_deadline) > 0:
        record("wdt", "-", "expired")
        print("vboard: watchdog expired, resetting")
        reset()
    if _sock is None:
        return
    # Look before reading: a recv with nothing there would cost a 512-byte
    # buffer and an exception, at every hardware access, on the heap the
    # firmware's scenarios measure (and fragment). ipoll, not poll: poll
    # builds a list at every look.
    waiting = True
    while waiting:
        waiting = False
        for ready in _ready.ipoll(0):
            waiting = True
            words = _sock.recv(512).decode().split()
            if words:
                _command(words)


# Every _READS_EVERY samples the firmware takes out of the sensor the board
# logs the count, so the host can tell how far its reading falls behind.
_READS_EVERY = const(250)
reads = 0


def read():
    """The firmware took a sample out of the sensor."""
    global reads
    reads += 1
    if reads % _READS_EVERY == 0:
        record("reads", "-", reads)


def accel_sample(now):
    """The acceleration the wearer felt at board time `now` (ticks_ms), in
    milli-g. A sensor samples on its own clock and asks for each sample's
    time, so a firmware that reads late still gets every sample kept."""
    if not trace_samples:
        return _REST
    # A sample taken before the trace changed, and read after, reads as the
    # new trace's first: it is at most one late read old.
    i = max(0, time.ticks_diff(now, trace_start) // _SAMPLE_MS)
    i = i % trace_samples if trace_loop else min(i, trace_samples - 1)
    trace.seek(6 * i)
    return struct.unpack("<hhh", trace.read(6))


# The fakes' names are few and mostly the VM's own: on the ESP32 these are C,
# but here every new name takes room in the VM's name table on the heap the
# firmware is measured on, and that table grows in steps of kilobytes.
def fill(chip, step, n):
    """Hand chip.store(mg) each sample the chip's own clock took since it
    last took one (chip.next: when the next is due; step: ms between two),
    the last n at most: older ones are what a full FIFO drops."""
    now = time.ticks_ms()
    due = time.ticks_diff(now, chip.next) // step + 1
    if due > n:
        chip.next = time.ticks_add(chip.next, (due - n) * step)
        due = n
    for _ in range(due):
        chip.store(accel_sample(chip.next))
        chip.next = time.ticks_add(chip.next, step)


# Exit status the harness reads as "the board reset itself" and restarts.
_RESET_EXIT = const(75)


def reset():
    record("reset", "-", "1")
    import sys
    sys.exit(_RESET_EXIT)


_initial_state()
