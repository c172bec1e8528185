# The device's JSON config (/config.json on flash): defaults, validation at
# boot with messages a person can act on, and the boot counter. Pure logic:
# CPython runs it too. Loaded at boot and for a `config` command only.
import json
import os

PATH = "config.json"
BOOT_PATH = "boot.txt"
# Boot numbers drawn at random when the counter cannot be saved start here
# (and stay within the 10 digits an id allows).
RANDOM_BOOT_BASE = 1000000000

# name: (default, kind[, min, max]). A default of None means "required".
# docs/firmware.md explains every setting.
_INT = 0
_BOOL = 1
_STR = 2
_DICT = 3

SPEC = {
    "device": (None, _STR),
    "site": (None, _STR),
    "wifi_ssid": (None, _STR),
    "wifi_password": ("", _STR),
    "mqtt_host": (None, _STR),
    "mqtt_port": (8883, _INT, 1, 65535),
    # TLS unless the config turns it off: then link.py says so at every start.
    "mqtt_tls": (True, _BOOL),
    "mqtt_ca": ("ca.der", _STR),
    "mqtt_user": ("", _STR),
    "mqtt_password": ("", _STR),
    "keepalive_s": (30, _INT, 5, 600),
    "connect_timeout_s": (10, _INT, 1, 120),
    "backoff_max_s": (30, _INT, 1, 600),
    "puback_timeout_s": (10, _INT, 1, 120),
    "delivered_timeout_s": (30, _INT, 1, 3600),
    "sensor": ("lis3dh", ("lis3dh", "mpu6050")),
    "prealarm_s": (20, _INT, 1, 600),
    # At least 1 s: a long press (0.6 s, gestures.py) must stay clear of the hold.
    "hold_ms": (2000, _INT, 1000, 10000),
    "panic_presses": (3, _INT, 3, 10),
    "press_window_ms": (2000, _INT, 500, 5000),
    "silent": (False, _BOOL),
    "heartbeat_s": (30, _INT, 5, 3600),
    "outbox_max": (32, _INT, 4, 500),
    "battery_divider": (2000, _INT, 1000, 10000),
    "battery_empty_mv": (3300, _INT, 2500, 4500),
    "battery_full_mv": (4150, _INT, 2500, 4500),
    "low_battery_pct": (15, _INT, 0, 100),
    "ntp_host": ("pool.ntp.org", _STR),
    "wdt_ms": (10000, _INT, 2000, 60000),
    "location": ({}, _DICT),
    # A session started on the wearable lasts this long (the protocol's bounds).
    "session_s": (7200, _INT, 60, 7 * 24 * 3600),
    "mandown": ({}, _DICT),
}
# What a `config` command may change over the air; the rest needs a re-flash.
REMOTE = ("prealarm_s", "silent", "heartbeat_s", "low_battery_pct", "mandown", "location", "session_s")


class ConfigError(Exception):
    pass


def _valid_name(s):
    if not 1 <= len(s) <= 32 or s[0] in "-_":
        return False
    for c in s:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c in "-_"):
            return False
    return True


def _check(name, value, spec):
    kind = spec[1]
    if isinstance(kind, tuple):
        if value not in kind:
            return "must be one of %s" % ", ".join(kind)
    elif kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if len(spec) > 2 and not spec[2] <= value <= spec[3]:
            return "must be between %d and %d" % (spec[2], spec[3])
    elif kind == _BOOL:
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == _STR:
        if not isinstance(value, str):
            return "must be a string"
        if name in ("device", "site") and not _valid_name(value):
            return "must be 1-32 of a-z 0-9 _ - (not starting with _ or -)"
    elif kind == _DICT and not isinstance(value, dict):
        return "must be an object"
    return None


def validate(raw):
    """Return the full config (defaults filled in) or raise ConfigError
    listing every problem at once."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    problems = []
    cfg = {}
    for name in raw:
        if name not in SPEC:
            problems.append("unknown setting %r" % name)
    for name, spec in SPEC.items():
        if name not in raw:
            if spec[0] is None:
                problems.append("%r is required" % name)
            else:
                cfg[name] = spec[0]
            continue
        problem = _check(name, raw[name], spec)
        if problem:
            problems.append("%r %s (got %s)" % (name, problem, json.dumps(raw[name])[:40]))
        else:
            cfg[name] = raw[name]
    if not problems and cfg["battery_empty_mv"] >= cfg["battery_full_mv"]:
        problems.append("'battery_empty_mv' must be below 'battery_full_mv'")
    if problems:
        raise ConfigError("; ".join(problems))
    return cfg


def load(path=PATH):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("no %s on the device flash (copy one with mpremote)" % path)
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError("%s is not valid JSON" % path)
    return validate(raw)


def merge_remote(cfg, changes):
    """Validate a `config` command; returns the new config or raises."""
    if not isinstance(changes, dict):
        raise ConfigError("config must be an object")
    for name in changes:
        if name not in REMOTE:
            raise ConfigError("%r cannot be changed over the air" % name)
    raw = dict(cfg)
    raw.update(changes)
    return validate(raw)


def update(app, changes):
    """The `config` command on the running wearable (an app.App): checked,
    saved, then applied, or rejected with a log line. It lives here, not in
    app.py, so that its code is on the heap only while this module is
    loaded for it."""
    import mandown
    try:
        new = merge_remote(app.cfg, changes)
        mandown.validate(new["mandown"])  # its own settings are checked by it
        save(new)
    except (ConfigError, ValueError) as e:
        print("cmd: config rejected: %s" % e)
        return
    except OSError as e:
        print("cmd: config rejected: cannot save it to flash (errno %s)" % e.errno)
        return
    app.cfg = new
    app.link.cfg = new
    app.states.prealarm_s = new["prealarm_s"]
    app.player.silent = new["silent"]
    # The same detector, so the learned upright is kept: relearning it would
    # need a walk first, and until then a wearer bent over a bench could
    # read as tilted.
    app.detector.configure(new["mandown"])
    print("cmd: config applied %s" % json.dumps(changes))


def save(cfg, path=PATH):
    save_text(path, json.dumps(cfg))


def save_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def next_boot(path=BOOT_PATH):
    """Increment the persisted boot counter (atomic rename: a power cut
    leaves the old or the new value, never a torn one). Here because it runs
    once, at boot, while this module is loaded."""
    boot = 0
    try:
        with open(path) as f:
            boot = int(f.read())
    except (OSError, ValueError):
        pass
    boot += 1
    try:
        save_text(path, str(boot))
    except OSError as e:
        # A number not saved would be counted again at the next boot, and
        # that boot's alarm ids would repeat ones the gateway already has,
        # which it would take for duplicates: a random number far above any
        # counted one instead.
        boot = RANDOM_BOOT_BASE + int.from_bytes(os.urandom(4), "big") % RANDOM_BOOT_BASE
        print("boot: cannot save the boot counter (errno %s), boot %d is random"
              % (e.errno, boot))
    return boot
