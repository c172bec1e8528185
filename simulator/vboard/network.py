# Virtual ESP32 `network` module: a station interface whose access point the
# harness puts in or out of range. Reaching the broker is real TCP on the
# host; the harness cuts that with a proxy.
import vboard_core as core

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201


class WLAN:
    PM_POWERSAVE = 2  # ESP-IDF WIFI_PS_MAX_MODEM

    def __init__(self, interface=STA_IF):
        self._active = False
        self._joining = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def connect(self, ssid=None, key=None):
        if not self._active:
            raise OSError("Wifi Not Started")  # what the ESP32 port says
        self._joining = True
        core.record("wifi", "-", "connect", ssid)

    def disconnect(self):
        self._joining = False

    def isconnected(self):
        core.poll()
        return self._active and self._joining and core.wifi_in_range

    def status(self, what=None):
        if what == "rssi":
            return core.rssi
        if self.isconnected():
            return STAT_GOT_IP
        return STAT_NO_AP_FOUND if self._joining else STAT_IDLE

    def config(self, name=None, **kwargs):
        if name == "mac":
            return b"\x24\x0a\xc4\x00\x00\x01"
        if not self._active:
            raise OSError("Wifi Not Started")
        for key in kwargs:  # recorded, e.g. "wifi - pm 2": tests check what the firmware set
            core.record("wifi", "-", key, kwargs[key])
        return None

    def ifconfig(self, *args):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
