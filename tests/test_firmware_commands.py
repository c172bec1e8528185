"""The device's reading of downlink commands (firmware/commands.py):
every command the gateway sends is accepted, and any other payload, however hostile, is refused with a reason, never an exception.
Runs under CPython and, via the last test, under MicroPython; under CPython
a property test also feeds it arbitrary bytes and arbitrary JSON."""

import json
import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import commands
from protocol import MAX_PAYLOAD
from commands import parse as parse_cmd


def cmd(**fields):
    body = {"v": 1, "id": "gw-1:7", "cmd": "ping"}
    body.update(fields)
    return json.dumps(body).encode()


def refused(payload):
    body, reason = parse_cmd(payload)
    assert body is None and reason, (payload[:80], body)
    return reason


def test_every_command_the_gateway_sends_is_accepted(scratch):
    for payload in (cmd(), cmd(cmd="delivered", ref="dev-001:12:7", time=1767225600.25),
                    cmd(cmd="help_coming", ref="dev-001:12:7", by="desk"),
                    cmd(cmd="resolved", ref="dev-001:12:7"),
                    cmd(cmd="session_due", due_in_s=300),
                    cmd(cmd="session", due_in_s=1800),
                    cmd(cmd="session_end"),
                    cmd(cmd="config", config={"prealarm_s": 30, "location": {"zone": "lab-3"},
                                              "mandown": {"impact_g": 1.8}})):
        body, reason = parse_cmd(payload)
        assert reason is None and body == json.loads(payload)


def test_deep_nesting_is_refused_before_it_is_decoded(scratch):
    assert "nested" in refused(b"[" * 1000)
    assert "nested" in refused(b"[" * 1000 + b"]" * 1000)
    assert "nested" in refused(b'{"a":' * 300 + b"1" + b"}" * 300)
    assert "nested" in refused(cmd(cmd="config", config={"mandown": {"a": {"b": [1]}}}))
    # Brackets inside strings are text, not nesting.
    assert parse_cmd(cmd(cmd="config", config={"location": {"zone": "[[[[{{{{\\\"[[["}}))[1] is None


def test_payloads_that_are_not_utf8_json_objects_are_refused(scratch):
    assert "over %d bytes" % MAX_PAYLOAD == refused(cmd(cmd="config", config={"location": {"zone": "x" * MAX_PAYLOAD}}))
    assert "UTF-8" in refused(b'{"v":1,"id":"g\xff","cmd":"ping"}')
    # A surrogate encoded raw: CPython's decoder refuses it, MicroPython's
    # passes it and the string check does.
    assert refused(b'{"v":1,"id":"g","cmd":"ping","by":"\xed\xa0\x80"}')
    assert refused(b"\xef\xbb\xbf" + cmd())  # UTF-8 with a BOM
    assert refused(b"\xff\xfe" + bytes(b for c in cmd() for b in (c, 0)))  # UTF-16
    assert "not JSON" in refused(b'{"v":1,')
    assert "not JSON" in refused(b"")
    assert "object" in refused(b'[{"v":1,"id":"g","cmd":"ping"}]')
    assert "object" in refused(b'"ping"')


def test_strings_and_numbers_the_device_cannot_carry_on_are_refused(scratch):
    assert "surrogate" in refused(b'{"v":1,"id":"g","cmd":"config","config":{"location":{"zone":"\\ud800"}}}')
    assert "surrogate" in refused(b'{"v":1,"id":"g","cmd":"ping","\\udfff":1}')
    assert refused(b'{"v":1,"id":"g","cmd":"config","config":{"mandown":{"impact_g":1e400}}}')
    assert refused(b'{"v":1,"id":"g","cmd":"config","config":{"mandown":{"impact_g":NaN}}}')
    assert refused(b'{"v":1,"id":"g","cmd":"config","config":{"mandown":{"impact_g":-Infinity}}}')


def test_version_must_be_the_integer_1(scratch):
    for v in (True, 1.0, "1", 2, 0, None, [1]):
        assert "bad v" == refused(cmd(v=v))
    assert "bad v" == refused(b'{"id":"g","cmd":"ping"}')


def test_each_field_the_device_acts_on_has_its_type_and_range(scratch):
    for bad_id in (None, 7, "", "x" * 65, ["gw"], {"a": 1}):
        assert "bad id" == refused(cmd(id=bad_id))
    for name in ("delivered", "help_coming", "resolved"):
        for bad_ref in (None, 12, "", "d" * 65, ["dev-001:1:1"], {"id": "dev-001:1:1"}, True):
            assert "bad ref" == refused(cmd(cmd=name, ref=bad_ref))
        assert "bad ref" == refused(cmd(cmd=name))
    for bad_due in (None, -1, 7 * 24 * 3600 + 1, 1.5, "300", True, [300]):
        assert "bad due_in_s" == refused(cmd(cmd="session_due", due_in_s=bad_due))
    assert "bad due_in_s" == refused(cmd(cmd="session_due"))
    for bad_config in (None, 30, "prealarm_s=30", [{"prealarm_s": 30}], True):
        assert "bad config" == refused(cmd(cmd="config", config=bad_config))
    assert "bad config" == refused(cmd(cmd="config"))
    for bad_cmd in ("reboot", "", None, 1, ["ping"], {"ping": 1}):
        assert "bad cmd" == refused(cmd(cmd=bad_cmd))


def test_a_payload_as_memoryview_or_bytearray_reads_like_bytes(scratch):
    # The MQTT client hands the handler a slice of the packet it read.
    packet = b"xx" + cmd(cmd="resolved", ref="dev-001:1:1")
    assert parse_cmd(memoryview(packet)[2:])[0]["ref"] == "dev-001:1:1"
    assert parse_cmd(bytearray(packet[2:]))[0]["cmd"] == "resolved"


if sys.implementation.name == "cpython":
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from micropython_cases import run_cases_under_micropython

    def outcome(payload):
        """parse must answer (body, None) or (None, reason), whatever arrives."""
        result = parse_cmd(payload)
        assert isinstance(result, tuple) and len(result) == 2
        body, reason = result
        assert (body is None) != (reason is None)
        assert reason is None or isinstance(reason, str)
        return body

    @settings(max_examples=2000, deadline=None)
    @given(st.binary(max_size=MAX_PAYLOAD + 64))
    def test_arbitrary_bytes_are_a_command_or_a_refusal(payload):
        outcome(payload)

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20)
    command_fields = st.fixed_dictionaries(
        {}, optional={"v": json_values | st.just(1), "id": json_values | st.text(max_size=70),
                      "cmd": json_values | st.sampled_from(commands.COMMANDS),
                      "ref": json_values | st.text(max_size=70), "due_in_s": json_values,
                      "config": json_values, "time": json_values, "by": json_values})

    @settings(max_examples=2000, deadline=None)
    @given(command_fields | json_values, st.booleans())
    def test_arbitrary_json_is_a_command_or_a_refusal(value, ascii_only):
        body = outcome(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))
        if body is not None:  # what is accepted is exactly what the device relies on
            assert type(body["v"]) is int and body["v"] == 1
            assert isinstance(body["id"], str) and body["cmd"] in commands.COMMANDS

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)

    def test_reading_commands_interns_none_of_their_characters():
        # MicroPython interns every character taken out of a str, for good,
        # and its table of names is the firmware's tightest budget
        # (docs/firmware.md): commands must not grow it, whatever they hold.
        import subprocess

        from simulator.paths import FIRMWARE, MICROPYTHON
        script = (
            "import micropython, commands\n"
            "commands.parse(b'{\"v\":1,\"id\":\"gw:1\",\"cmd\":\"resolved\",\"ref\":\"d:1:1\"}')\n"
            "micropython.qstr_info()\n"
            "for ref in ('QXZ:98765', 'Halle S\\u00fcd', '\\u4e2d\\u6587~#@'):\n"
            "    commands.parse(('{\"v\":1,\"id\":\"%s\",\"cmd\":\"delivered\",\"ref\":\"%s\"}' % (ref, ref)).encode())\n"
            "micropython.qstr_info()\n")
        out = subprocess.run([str(MICROPYTHON), "-c", script], capture_output=True, text=True, check=True,
                             env={"MICROPYPATH": "%s:.frozen" % FIRMWARE}).stdout.splitlines()
        assert len(out) == 2 and "n_qstr" in out[0] and out[0] == out[1], out
