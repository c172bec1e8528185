"""Draws hardware/wiring.svg from firmware/pins.py, so the drawing cannot
disagree with the firmware: run `python3 hardware/wiring.py` after changing a
pin; tests/test_hardware.py regenerates it and compares.

Standalone on purpose (standard library only, no lonewatch import): anyone
building a wearable can run it from a checkout."""

import sys
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
PINS = HERE.parent / "firmware" / "pins.py"
OUT = HERE / "wiring.svg"

# What hangs on each pin of firmware/pins.py, as drawn (lines of the part box).
# A pin in pins.py without an entry here is an error, not a blank box.
PARTS = {
    "BUTTON": ("Panic button (momentary, NO)", "other leg to GND", "internal pull-up, active low"),
    "BUZZER": ("Piezo buzzer, 3 V, ~2.7 kHz", "via NPN 2N2222 / BC817", "1 kΩ base resistor, PWM"),
    "VIBRATION": ("Vibration motor 3 V coin", "via N-MOSFET AO3400, 100 Ω gate", "1N4148 flyback across motor"),
    "LED": ("Status LED", "330 Ω to GND", "high = on"),
    "I2C_SDA": ("Accelerometer SDA", "LIS3DH 0x18 or MPU-6050 0x68", "4.7 kΩ pull-up to 3V3"),
    "I2C_SCL": ("Accelerometer SCL", "same module as SDA", "4.7 kΩ pull-up to 3V3"),
    "BATTERY": ("Battery sense", "VBAT - 100 kΩ - pin - 100 kΩ - GND", "100 nF pin to GND (ADC1)"),
}

ROW = 74
TOP = 96
BOX_X, BOX_W = 40, 230
PART_X, PART_W = 470, 330


def pin_map(path=PINS):
    namespace = {}
    exec(path.read_text(), namespace)
    return {k: v for k, v in namespace.items() if k.isupper() and isinstance(v, int)}


def text(x, y, s, size=13, anchor="start", weight="normal"):
    return ('<text x="%d" y="%d" font-size="%d" text-anchor="%s" font-weight="%s">%s</text>'
            % (x, y, size, anchor, weight, escape(s)))


def render(pins):
    missing = sorted(set(pins) - set(PARTS))
    if missing:
        raise SystemExit("hardware/wiring.py: no part drawn for pin(s) %s of firmware/pins.py" % ", ".join(missing))
    names = sorted(pins, key=lambda n: (pins[n], n))
    height = TOP + ROW * len(names) + 150
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="840" height="%d" viewBox="0 0 840 %d" '
           'font-family="DejaVu Sans, Arial, sans-serif">' % (height, height),
           '<rect width="100%" height="100%" fill="white"/>',
           text(420, 32, "lonewatch wearable: wiring (generated from firmware/pins.py)", 17, "middle", "bold"),
           text(420, 54, "ESP32-WROOM-32 dev board, 3V3 logic; every part also needs GND", 12, "middle")]
    box_h = ROW * len(names) + 20
    out.append('<rect x="%d" y="%d" width="%d" height="%d" rx="8" fill="#eef3fb" stroke="#224" stroke-width="2"/>'
               % (BOX_X, TOP - 30, BOX_W, box_h))
    out.append(text(BOX_X + 16, TOP - 8, "ESP32-WROOM-32", 14, weight="bold"))
    for i, name in enumerate(names):
        y = TOP + 24 + ROW * i
        gpio = pins[name]
        title, line2, line3 = PARTS[name]
        out.append(text(BOX_X + BOX_W - 12, y + 4, "GPIO %d  %s" % (gpio, name), 13, "end"))
        out.append('<circle cx="%d" cy="%d" r="4" fill="#224"/>' % (BOX_X + BOX_W, y))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#224" stroke-width="2"/>'
                   % (BOX_X + BOX_W, y, PART_X, y))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff8e6" stroke="#864" stroke-width="1.5"/>'
                   % (PART_X, y - 26, PART_W, 58))
        out.append(text(PART_X + 10, y - 8, title, 13, weight="bold"))
        out.append(text(PART_X + 10, y + 9, line2, 12))
        out.append(text(PART_X + 10, y + 25, line3, 12))
    y = TOP + box_h + 10
    notes = ("Power: 1S LiPo with protection (DW01A + FS8205A), charged by a TP4056 from USB 5 V;",
             "its output feeds the board's 3.3 V LDO (ME6211 / AP2112 for a bare module) and VBAT sense.",
             "Accelerometer: VCC to 3V3, GND to GND, address pin to GND; mount it flat on the board.",
             "Strapping pins 0, 12, 15 and flash pins 6-11 stay free (tests/test_firmware_build.py).")
    for k, note in enumerate(notes):
        out.append(text(BOX_X, y + 18 * k, note, 12))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    svg = render(pin_map())
    if argv[1:] == ["--check"]:
        return 0 if OUT.exists() and OUT.read_text() == svg else "hardware/wiring.svg is out of date: run python3 hardware/wiring.py"
    OUT.write_text(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
