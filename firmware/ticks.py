# MicroPython's wrapping millisecond-tick sum and difference and `const`, with plain
# stand-ins so the pure modules that use them also run under CPython.
try:
    from micropython import const
    from time import ticks_add, ticks_diff
except ImportError:  # CPython
    def const(value):
        return value

    def ticks_add(a, b):
        return a + b

    def ticks_diff(a, b):
        return a - b
