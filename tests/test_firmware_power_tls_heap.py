"""The firmware over TLS on a device-sized heap, as test_firmware_heap.py
runs it over plain MQTT: compiled modules, the heap granted to the firmware
plus what the virtual board's own modules measure, against mosquitto's
shipped TLS listener with the device's own credentials.

On this 64-bit VM the SSL context is 3168 B in one piece and a TLS socket
about 640 B; with them the firmware keeps about 81 KB live (77 KB over plain
MQTT). When it kept 87 KB, an allocation of 184-520 B failed at 96-100 KB
with 9-12 KB free (a fragmented heap, the board reset again and again); the
heap savings since (docs/firmware.md) let it run at 96 KB. Objects are up to twice their
ESP32 size here, and mbedTLS's own buffers are not on this heap (on the
ESP32 they come from ESP-IDF's)."""

from types import SimpleNamespace

from firmware_harness import device_for  # noqa: F401
from test_mosquitto_config import PASSWORD, shipped  # noqa: F401  (fixture)

from lonewatch.commands.provision import pem_to_der

HEAP_KB = 96


def test_a_panic_over_tls_with_the_devices_own_credentials_on_a_96k_heap(shipped, device_for):
    ca = shipped.ca.read_bytes()
    tls_listener = SimpleNamespace(port=shipped.tls_port)
    dev = device_for(tls_listener, device_heap_kb=HEAP_KB, start=False, device="dev-001", mqtt_tls=True,
                     mqtt_user="dev-001", mqtt_password=PASSWORD["dev-001"])
    (dev.flash / "ca.der").write_bytes(pem_to_der(ca))
    dev.start(timeout=30)
    dev.press(2300)
    dev.wait_console("link: broker has alarm", 20)
    dev.wait_console("heap: used", after=dev.mark())
    used, peak = dev.heap_report()
    print("\nTLS on %d KB: heapsize %s B (+%d B virtual board); peak live %d B, firmware share %d B (%.1f KB)"
          % (HEAP_KB, dev.heapsize, dev.vboard_heap, peak, peak - dev.vboard_heap,
             (peak - dev.vboard_heap) / 1024))
    assert dev.boots == 1 and not any("MemoryError" in line for line in dev.console)
