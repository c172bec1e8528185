"""An alarm raised when the heap has no room for its record still reaches
the flash. The real firmware (compiled, as a device runs it) under the real
MicroPython VM, on a heap the test first tears into tiny holes, as a long
run leaves it: small objects still fit, the alarm's record does not."""

import json
import subprocess
import sys

from simulator.board import compile_firmware, device_config
from simulator.paths import FIRMWARE, MICROPYTHON, VBOARD

sys.path.insert(0, str(FIRMWARE))
import outbox as device_outbox  # noqa: E402  the firmware's own reader of the flash

WEARER_PANICS_ON_A_TORN_HEAP = """
import gc
import app
import config
import gestures

wearable = app.App(config.load(), 1)
# Every free block taken, alternately by a block kept and one let go: after
# a collection no hole is more than a block or two (32 B each).
kept = spare = None
try:
    while True:
        kept = (kept, None)
        spare = (spare, None)
except MemoryError:
    pass
spare = None
gc.collect()
try:
    bytearray(100)  # a few blocks in one piece
    print("heap not torn")
except MemoryError:
    pass
wearable.on_gesture(gestures.PANIC)
"""


def test_a_panic_on_a_torn_heap_is_stored_on_flash(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(device_config(1)))
    compile_firmware(tmp_path / "lib")
    compile_firmware(tmp_path / "vboard", VBOARD)
    result = subprocess.run(
        [str(MICROPYTHON), "-X", "heapsize=160k", "-c", WEARER_PANICS_ON_A_TORN_HEAP],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"MICROPYPATH": "vboard:lib:.frozen",
             "LW_VBOARD_LOG": str(tmp_path / "vboard.log")})
    console = result.stdout + result.stderr
    assert result.returncode == 0 and "heap not torn" not in console, console
    assert "heap: reserve used" in console, console  # the first write did fail
    records = device_outbox.Outbox(str(tmp_path / "outbox.log")).records
    assert [(r[1], json.loads(r[4])["type"]) for r in records] == [("alarm", "panic")], console
