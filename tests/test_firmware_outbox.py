"""The outbox on flash: an event leaves on its PUBACK, an alarm only on the
gateway's `delivered` (and is due again if that does not come in time),
order is kept across reboots, a full outbox drops heartbeats and events but
never an alarm, a torn last record (power cut mid-write) leaves it
readable, and a flash that refuses writes costs no record. Runs under CPython and, via the last test, under MicroPython."""

import io
import os
import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import outbox
from outbox import ALARM, EVENT, HEARTBEAT


def payload(n):
    return '{"v":1,"device":"dev-001","id":"dev-001:1:%d","type":"panic","uptime_ms":%d}' % (n, n)


def alarm_id(n):
    return "dev-001:1:%d" % n


def add(box, kind, n):
    """Queue record n as App.queue does: its JSON, id and uptime."""
    return box.add(kind, payload(n), alarm_id(n), n)


def record_line(kind, n):
    """The whole line the outbox writes for record n."""
    buf = io.StringIO()
    outbox._added(buf, n, kind, alarm_id(n), n, payload(n))
    return buf.getvalue()


def drain(box):
    """Send everything as the link would, with the broker and the gateway
    answering at once: PUBACK for every record, `delivered` for alarms."""
    out = []
    while box.next_to_send(0):
        key, kind, rid, _, data, _ = box.next_to_send(0)
        out.append((kind, data))
        box.sent(key, 0)
        if kind == ALARM:
            assert box.delivered(rid)
    return out


def test_records_survive_a_reboot_in_order_until_acknowledged(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    for n in range(5):
        add(box, ALARM if n % 2 == 0 else EVENT, n)
    box.sent(box.next_to_send(0)[0], 0)  # PUBACK for alarm 0
    box.delivered(alarm_id(0))           # and the gateway stored it
    again = outbox.Outbox(path)  # reboot
    assert [data for _, data in drain(again)] == [payload(n) for n in range(1, 5)]
    assert len(outbox.Outbox(path)) == 0


def test_event_leaves_on_its_puback(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    key = add(box, EVENT, 1)
    box.sent(key, 0)
    assert len(box) == 0 and box.next_to_send(60000) is None
    assert len(outbox.Outbox(path)) == 0


def test_alarm_the_broker_has_waits_for_delivered_then_is_due_again(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path, delivered_timeout_ms=30000)
    key = add(box, ALARM, 1)
    assert box.next_to_send(1000) == (key, ALARM, alarm_id(1), 1, payload(1), False)
    box.sent(key, 1000)                  # PUBACK: the broker has it, no more
    assert len(box) == 1 and box.next_to_send(30999) is None
    assert box.next_to_send(31000) == (key, ALARM, alarm_id(1), 1, payload(1), True)  # same record
    box.sent(key, 31500)                 # sent again: the wait starts over
    assert box.next_to_send(61499) is None
    assert box.delivered(alarm_id(1))
    assert len(box) == 0 and box.next_to_send(999999) is None
    assert not box.delivered(alarm_id(1))  # a repeated `delivered` changes nothing
    assert len(outbox.Outbox(path)) == 0


def test_alarm_awaiting_delivered_does_not_hold_up_newer_records(scratch):
    box = outbox.Outbox(scratch + "/outbox.log", delivered_timeout_ms=30000)
    first = add(box, ALARM, 1)
    box.sent(first, 0)
    later = add(box, EVENT, 2)
    assert box.next_to_send(10)[0] == later


def test_unconfirmed_alarm_is_replayed_after_a_reboot(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    box.sent(box.next_to_send(0)[0], 0)  # the broker has it; then the power goes
    again = outbox.Outbox(path)
    assert again.next_to_send(0)[1:] == (ALARM, alarm_id(1), 1, payload(1), False)


def test_delivered_before_the_puback_is_handled(scratch):
    # The gateway's `delivered` can be read before the link resumes from the
    # PUBACK that preceded it on the wire.
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    key = add(box, ALARM, 1)
    assert box.delivered(alarm_id(1))
    box.sent(key, 0)
    assert len(box) == 0 and len(outbox.Outbox(path)) == 0


def test_new_keys_after_reboot_follow_the_old_ones(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    add(box, ALARM, 2)
    again = outbox.Outbox(path)
    add(again, ALARM, 3)
    assert [data for _, data in drain(again)] == [payload(1), payload(2), payload(3)]


def test_heartbeats_stay_in_ram_and_the_newest_supersedes(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    box.add(HEARTBEAT, "hb1")
    add(box, ALARM, 1)
    box.add(HEARTBEAT, "hb2")
    assert box.count(HEARTBEAT) == 1
    assert drain(box) == [(ALARM, payload(1)), (HEARTBEAT, "hb2")]
    box.add(HEARTBEAT, "hb3")
    assert len(outbox.Outbox(path)) == 0


def test_full_outbox_drops_heartbeats_then_oldest_events_never_an_alarm(scratch):
    # Not even one the broker already has but the gateway has not confirmed.
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path, max_records=4)
    box.add(EVENT, "e1", "dev-001:1:901", 901)
    box.add(HEARTBEAT, "hb")
    add(box, ALARM, 1)
    box.sent(box.records[-1][0], 0)  # the broker has alarm 1, no `delivered` yet
    box.add(EVENT, "e2", "dev-001:1:902", 902)
    add(box, ALARM, 2)  # full: the heartbeat goes
    assert box.count(HEARTBEAT) == 0 and len(box) == 4
    add(box, ALARM, 3)  # full: the oldest event goes
    add(box, ALARM, 4)  # full: the other event goes
    assert box.count(EVENT) == 0
    add(box, ALARM, 5)  # full of alarms: it still goes in
    assert box.add(EVENT, "e3", "dev-001:1:903", 903) is None  # an event does not displace an alarm
    assert [d for _, d in drain(outbox.Outbox(path, max_records=4))] == [payload(n) for n in range(1, 6)]


def test_torn_last_record_from_a_power_cut_leaves_a_readable_outbox(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    add(box, ALARM, 2)
    with open(path) as f:
        good = f.read()
    with open(path, "w") as f:  # the third append was cut half-way
        f.write(good + record_line(ALARM, 3)[:40])
    again = outbox.Outbox(path)
    assert again.skipped == 1
    add(again, ALARM, 4)  # must not be glued onto the torn line
    assert [d for _, d in drain(outbox.Outbox(path))] == [payload(1), payload(2), payload(4)]


def test_corrupt_record_in_the_middle_is_skipped_and_the_rest_kept(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    for n in range(3):
        add(box, ALARM, n)
    with open(path) as f:
        lines = f.read().split("\n")
    lines[1] = lines[1].replace("uptime", "uptimX")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    again = outbox.Outbox(path)
    assert again.skipped == 1
    assert [d for _, d in drain(again)] == [payload(0), payload(2)]


def test_leftover_temp_file_from_a_cut_compaction_is_harmless(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    with open(path + ".tmp", "w") as f:
        f.write("00000000 +1 alarm dev-001:1:1 1 {tr")
    assert [d for _, d in drain(outbox.Outbox(path))] == [payload(1)]


def test_log_is_compacted_and_stays_bounded(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 0)  # stays queued the whole time
    for n in range(1, 200):
        box.sent(add(box, EVENT, n), 0)
    assert os.stat(path)[6] <= outbox.COMPACT_BYTES + 400
    assert [d for _, d in drain(outbox.Outbox(path))] == [payload(0)]


def test_empty_outbox_truncates_the_log(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    drain(box)
    assert os.stat(path)[6] == 0


def test_record_from_an_earlier_boot_is_sent_as_not_having_waited(scratch):
    # The ESP32's uptime restarts at 0: after a reboot, "now" can be far below
    # the uptime at which an old record was raised.
    import protocol
    assert protocol.sent_uptime("dev-001:7:3", 3600000, 5000, boot=8) == 3600000
    assert protocol.sent_uptime("dev-001:8:1", 4000, 5000, boot=8) == 5000


def test_an_outbox_written_by_the_previous_firmware_is_read_and_sent(scratch):
    # Before records carried their id and uptime as fields, a line was
    # `+KEY KIND JSON`: an alarm waiting on flash across the update is kept.
    path = scratch + "/outbox.log"
    with open(path, "w") as f:
        f.write(outbox._line("+1 alarm " + payload(1)))
        f.write(outbox._line("+2 event " + payload(2)))
        f.write(outbox._line("-2"))
        f.write(outbox._line("+3 alarm " + payload(3)))
    box = outbox.Outbox(path)
    assert box.skipped == 0
    assert box.next_to_send(0) == (1, ALARM, alarm_id(1), 1, payload(1), False)
    add(box, EVENT, 4)                   # appended in the new format after the old lines
    again = outbox.Outbox(path)
    assert [r[:5] for r in again.records] == [
        [1, ALARM, alarm_id(1), 1, payload(1)], [3, ALARM, alarm_id(3), 3, payload(3)],
        [4, EVENT, alarm_id(4), 4, payload(4)]]
    assert drain(again) == [(ALARM, payload(1)), (ALARM, payload(3)), (EVENT, payload(4))]


def test_a_record_leaves_with_its_send_time_without_being_decoded(scratch):
    import json
    import protocol
    data = protocol.encode_for_send(payload(7), 9000)
    assert json.loads(data) == dict(json.loads(payload(7)), sent_uptime_ms=9000)


def test_a_flash_that_refuses_writes_keeps_records_in_ram_and_sends_them(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    os.remove(path)
    os.mkdir(path)  # from now on the log cannot be opened for writing
    assert add(box, ALARM, 2) is not None
    assert box.flash_error is not None
    add(box, EVENT, 3)
    assert [data for _, data in drain(box)] == [payload(1), payload(2), payload(3)]
    assert len(box) == 0 and box.flash_error is not None


def test_a_flash_that_refuses_the_rewrite_at_boot_still_gives_the_sound_records(scratch):
    path = scratch + "/outbox.log"
    box = outbox.Outbox(path)
    add(box, ALARM, 1)
    add(box, ALARM, 2)
    torn = record_line(ALARM, 3)
    with open(path, "a") as f:
        f.write(torn[:len(torn) // 2])
    os.mkdir(path + ".tmp")  # the rewrite's temporary file cannot be written
    again = outbox.Outbox(path)
    assert again.skipped == 1 and again.flash_error is not None
    add(again, ALARM, 4)  # not appended to the torn line: kept in RAM
    assert [data for _, data in drain(again)] == [payload(1), payload(2), payload(4)]


if sys.implementation.name == "cpython":
    def test_replayed_records_from_an_earlier_boot_are_valid_for_the_gateway(tmp_path):
        import protocol
        from contract.protocol import parse_message
        old = protocol.encode(protocol.alarm("dev-001", "dev-001:7:3", "panic", 3600000)).decode()
        data = protocol.encode_for_send(old, protocol.sent_uptime("dev-001:7:3", 3600000, 5000, boot=8))
        msg = parse_message("lonewatch/v1/hq/dev-001/alarm", data)
        assert msg.body["sent_uptime_ms"] == msg.body["uptime_ms"]

    from micropython_cases import run_cases_under_micropython

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)
