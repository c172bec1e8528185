"""Firmware in the loop, hostile commands: payloads on the device's command
topic that are not commands it can act on (deep nesting, not UTF-8, wrong
types, numbers and strings it cannot carry, a message too large for its
heap) are each refused with a console line. The link stays up, nothing
resets, none of them comes back after a power cut, and a panic pressed
afterwards is delivered as always."""

from firmware_harness import DEVICE, SITE, desk_for, device_for  # noqa: F401
from contract.protocol import topic

HOSTILE = [
    b"[" * 1000,
    b"[" * 1000 + b"]" * 1000,
    b'{"v":1,"id":"g","cmd":"config","config":' + b'{"a":' * 300 + b"1" + b"}" * 301,
    b"\xff\xfe{\x00}\x00",
    b'{"v":1,"id":"g","cmd":"delivered","ref":"\xed\xa0\x80"}',
    b'{"v":1,"id":"g","cmd":"config","config":{"location":{"zone":"\\ud800"}}}',
    b'{"v":true,"id":"g","cmd":"ping"}',
    b'{"v":1.0,"id":"g","cmd":"ping"}',
    b'{"v":1,"id":["g"],"cmd":"ping"}',
    b'{"v":1,"id":"g","cmd":"delivered","ref":{"id":"dev-001:1:1"}}',
    b'{"v":1,"id":"g","cmd":"resolved"}',
    b'{"v":1,"id":"g","cmd":"session_due","due_in_s":"soon"}',
    b'{"v":1,"id":"g","cmd":"config","config":[1,2]}',
    b'{"v":1,"id":"g","cmd":"config","config":{"mandown":{"impact_g":1e400}}}',
    b'{"v":1,"id":"g","cmd":"config","config":{"mandown":{"impact_g":NaN}}}',
    b'{"v":1,"id":"g","cmd":"reboot"}',
    b"",
    b'{"v":1,"id":"g","cmd":"ping","pad":"' + b"x" * 2500 + b'"}',    # over the protocol's limit
]
# Over the MQTT client's limit: read past on the wire, never allocated.
TOO_LARGE = b'{"v":1,"id":"g","cmd":"ping","pad":"' + b"x" * 20000 + b'"}'


def test_hostile_commands_are_refused_and_the_device_still_delivers_alarms(mosquitto, desk_for,
                                                                           device_for):
    desk = desk_for(mosquitto, auto_deliver=True)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    mark = dev.mark()
    cmd_topic = topic(SITE, DEVICE, "cmd")
    for payload in HOSTILE[:9]:
        desk.client.publish(cmd_topic, payload, qos=1)
    desk.client.publish(cmd_topic, TOO_LARGE, qos=1)
    for payload in HOSTILE[9:]:
        desk.client.publish(cmd_topic, payload, qos=1)
    desk.command("ping")                    # in order after all of them
    dev.wait_console("cmd: ping", after=mark)

    console = dev.console[mark:]
    refusals = [line for line in console if line.startswith("cmd: refused")]
    assert len(refusals) == len(HOSTILE), "\n".join(console)
    assert sum("mqtt: dropped a %d-byte message" % len(TOO_LARGE) in line for line in console) == 1
    assert not [line for line in console if "link: offline" in line or "failed" in line
                or "died" in line or "Traceback" in line]
    assert dev.alive() and dev.boots == 1

    dev.press(2300)
    alarm_id = desk.wait_for("alarm", type="panic").body["id"]
    dev.wait_console("outbox: alarm %s confirmed, removed" % alarm_id, after=mark)
    dev.wait_console("state alarm -> delivered", after=mark)

    # Each was acknowledged when refused: none is delivered again after a power cut.
    dev.kill()
    dev.start()
    mark = dev.mark()
    desk.command("ping")
    dev.wait_console("cmd: ping", after=mark)
    assert not [line for line in dev.console[mark:] if "cmd: refused" in line or "dropped" in line]
    assert desk.invalid == []
