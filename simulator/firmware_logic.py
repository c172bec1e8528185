"""The firmware's pure-logic modules (gestures, alarm states, outbox, feedback
patterns, protocol encoding, downlink command checks, the man-down detector,
the device config and its defaults),
loaded from the firmware files themselves so the light fleet devices decide
exactly as a wearable does.

They import each other by bare name (`import patterns`, `from ticks import
ticks_diff`), as MicroPython's flat filesystem wants. Putting the firmware
folder on sys.path would let `protocol` or `config` shadow other modules in
this process, so each file is loaded by path under a private name, with its
firmware neighbours visible under their bare names only while it loads.
"""

from __future__ import annotations

import importlib.util
import sys

from simulator.paths import FIRMWARE

# In dependency order: a module's neighbours are loaded before it.
_MODULES = ("ticks", "patterns", "protocol", "commands", "gestures", "alarmstate", "outbox", "mandown",
            "config")


def _load_all() -> dict:
    loaded: dict = {}
    for name in _MODULES:
        spec = importlib.util.spec_from_file_location("lonewatch_firmware." + name, FIRMWARE / (name + ".py"))
        module = importlib.util.module_from_spec(spec)
        shadowed = {n: sys.modules.get(n) for n in loaded}
        sys.modules.update(loaded)
        try:
            spec.loader.exec_module(module)
        finally:
            for n, previous in shadowed.items():
                if previous is None:
                    del sys.modules[n]
                else:
                    sys.modules[n] = previous
        loaded[name] = module
    return loaded


_loaded = _load_all()
patterns = _loaded["patterns"]
protocol = _loaded["protocol"]
commands = _loaded["commands"]
gestures = _loaded["gestures"]
alarmstate = _loaded["alarmstate"]
outbox = _loaded["outbox"]
mandown = _loaded["mandown"]
config = _loaded["config"]
