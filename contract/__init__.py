"""The contract every part of lonewatch shares: the lonewatch/v1 protocol
(topics, validators, encoding) and the vocabulary (alarm types, causes,
priorities, states, resolution reasons, their labels).

It imports nothing of lonewatch's own, so the gateway, the desk, the
simulator, the benchmarks and the tests can all depend on it and on nothing
above it. The firmware cannot import it (it runs on the device); its encoder
is tested against this package instead.
"""
