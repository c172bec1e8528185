"""Run a test file's test_* functions under the real MicroPython VM.

The pure firmware modules must behave the same on the device as under
CPython, so their test files are written in the subset both run: plain
asserts, and every test takes one argument, a scratch directory.
"""

import subprocess
from pathlib import Path

from simulator.paths import FIRMWARE, MICROPYTHON

TESTS = Path(__file__).resolve().parent

RUNNER = """
import os
import {module} as cases
names = [n for n in dir(cases) if n.startswith("test_") and n != "test_cases_pass_under_micropython"]
names.sort()
for name in names:
    scratch = {scratch!r} + "/" + name
    os.mkdir(scratch)
    getattr(cases, name)(scratch)
    print("ok", name)
print("PASSED", len(names))
"""


def run_cases_under_micropython(test_file, tmp_path, heapsize="96k"):
    module = Path(test_file).stem
    script = RUNNER.format(module=module, scratch=str(tmp_path))
    result = subprocess.run(
        [str(MICROPYTHON), "-X", "heapsize=" + heapsize, "-c", script],
        env={"MICROPYPATH": "%s:%s:.frozen" % (FIRMWARE, TESTS)},
        capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "PASSED" in result.stdout, output
    return output
