# MicroPython's wrapping millisecond-tick difference, with a plain stand-in
# so the pure modules that use it also run under CPython.
try:
    from time import ticks_diff
except ImportError:  # CPython
    def ticks_diff(a, b):
        return a - b
