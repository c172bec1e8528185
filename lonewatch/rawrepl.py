"""MicroPython's raw REPL over a serial port (pyserial): run code on the
device and read its output, write and hash files. The same protocol
mpremote speaks: Ctrl-C to stop the running program, Ctrl-A for the raw
REPL, code then Ctrl-D; the device answers OK, the output, Ctrl-D, the
error output, Ctrl-D and the prompt `>`."""

from __future__ import annotations

import hashlib
import time

import serial

CHUNK = 256  # bytes of a file per command: small enough for the device's input buffer


class ReplError(Exception):
    pass


class RawRepl:
    def __init__(self, port: str, baudrate: int = 115200, timeout: float = 5.0):
        try:
            self.serial = serial.serial_for_url(port, baudrate=baudrate, timeout=0.1, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise ReplError("nothing to open at %s: %s" % (port, e)) from None
        self.timeout = timeout

    def close(self) -> None:
        self.serial.close()

    def _read_until(self, ending: bytes, timeout: float) -> bytes:
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(ending):
            if time.monotonic() > deadline:
                raise TimeoutError(data)
            data += self.serial.read(1)
        return data

    def enter(self) -> None:
        """Stop whatever runs and enter the raw REPL, or say why not."""
        try:
            self.serial.write(b"\r\x03\x03")
            time.sleep(0.1)
            self.serial.reset_input_buffer()
            self.serial.write(b"\r\x01")
            self._read_until(b"raw REPL; CTRL-B to exit\r\n>", self.timeout)
        except TimeoutError as e:
            seen = e.args[0][-60:] if e.args else b""
            raise ReplError("no MicroPython raw REPL answered on the port (got %r); is it a MicroPython "
                            "board, and is nothing else (a terminal, mpremote) using the port?" % seen) from None
        except serial.SerialException as e:
            raise ReplError("the port failed: %s" % e) from None

    def exec(self, code: str, timeout: float | None = None) -> bytes:
        """Run code; its printed output, or ReplError with the device's traceback."""
        timeout = timeout or self.timeout
        try:
            self.serial.write(code.encode() + b"\x04")
            if self._read_until(b"OK", timeout)[-2:] != b"OK":
                raise ReplError("the device did not accept the code")
            out = self._read_until(b"\x04", timeout)[:-1]
            err = self._read_until(b"\x04", timeout)[:-1]
            self._read_until(b">", timeout)
        except TimeoutError:
            raise ReplError("the device stopped answering") from None
        except serial.SerialException as e:
            raise ReplError("the port failed: %s" % e) from None
        if err:
            raise ReplError(err.decode(errors="replace").strip().splitlines()[-1])
        return out

    def write_file(self, path: str, data: bytes) -> None:
        self.exec("f=open(%r,'wb')\nw=f.write" % path)
        for i in range(0, len(data), CHUNK):
            self.exec("w(%r)" % data[i:i + CHUNK])
        self.exec("f.close()\ndel f,w")

    def sha256(self, path: str) -> str:
        out = self.exec(
            "import hashlib,binascii\nh=hashlib.sha256()\nf=open(%r,'rb')\n"
            "while 1:\n b=f.read(512)\n if not b:break\n h.update(b)\n"
            "f.close()\nprint(binascii.hexlify(h.digest()).decode())\ndel h,f,b" % path)
        return out.decode().strip()

    def rename(self, src: str, dst: str) -> None:
        self.exec("import os\nos.rename(%r,%r)" % (src, dst))

    def reset(self) -> None:
        """machine.reset(): the board restarts; nothing answers afterwards."""
        self.serial.write(b"import machine\nmachine.reset()\x04")
        self.serial.flush()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
