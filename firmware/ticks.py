# MicroPython's wrapping millisecond-tick difference and `const`, with plain
# stand-ins so the pure modules that use them also run under CPython.
try:
    from micropython import const
    from time import ticks_diff
except ImportError:  # CPython
    def const(value):
        return value

    def ticks_diff(a, b):
        return a - b
