# The outbox: every alarm and event is on flash before it is sent. An event
# leaves when the broker's PUBACK arrives; an alarm only when the gateway's
# `delivered` command for its id does, since a PUBACK says only that the
# broker took it (an ACL may drop it after acknowledging, a crash may lose
# it). Pure logic over a file, so it runs under CPython too.
#
# The file is an append-only log, one record per line:
#     CRC32HEX +KEY KIND ID UPTIME JSON   a message (added)
#     CRC32HEX -KEY                       it is done: PUBACKed event, delivered alarm
# ID and UPTIME are the record's id and uptime_ms, kept beside its encoded
# JSON so that nothing on the device decodes a record again to match a
# `delivered` or to stamp the send time. Firmware before this format wrote
# `+KEY KIND JSON`; such lines are still read (once, at boot: the JSON is
# decoded for its id and uptime) so an alarm waiting on flash across a
# firmware update is sent like any other.
# A power cut mid-append leaves at worst one torn last line; its checksum
# fails and it is skipped. Compaction writes the live records to a new file
# and renames it over the old one (atomic on LittleFS and POSIX).
#
# "The broker has this alarm" is kept in RAM only: it starts the wait for
# `delivered`, and after a reboot every alarm still on flash is sent again
# anyway (same id; the gateway answers a duplicate with `delivered` again).
#
# A flash that refuses a write (full, worn out) must not cost the alarm being
# written: the record stays in RAM and is sent like any other, and from then
# on nothing more is written this boot (`flash_error` says why), so nothing
# is appended after a torn line either. What is in RAM only is lost to a
# reboot; App raises a technical alarm so the desk knows. Records already on
# flash whose removal could not be written are sent again after a reboot,
# which the gateway answers as duplicates.
import json
import os
from binascii import crc32

from ticks import ticks_diff

ALARM = "alarm"
EVENT = "event"
HEARTBEAT = "heartbeat"
# Rewrite the log once it is this long; small enough to load on 100 KB heap.
COMPACT_BYTES = 8192


def _crc(body, value=0):
    try:
        return crc32(body, value)  # MicroPython reads a str's bytes in place
    except TypeError:  # CPython wants bytes
        return crc32(body.encode(), value)


def _line(body):
    return "%08x %s\n" % (_crc(body) & 0xFFFFFFFF, body)


def _parse(line):
    """The record body of a log line, or None if torn or corrupt."""
    if len(line) < 11 or line[-1] != "\n" or line[8] != " ":
        return None
    body = line[9:-1]
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    if _crc(body) & 0xFFFFFFFF != crc:
        return None
    return body


def _added(f, key, kind, rid, uptime_ms, payload):
    """Write an added record's line in pieces; returns its length. The
    payload, the record's one large piece, is never copied: on a heap torn
    into small holes the copies a joined line needs may not fit, and this
    write is what makes an alarm safe."""
    head = "+%d %s %s %d " % (key, kind, rid, uptime_ms)
    crc = "%08x " % (_crc(payload, _crc(head)) & 0xFFFFFFFF)
    for piece in (crc, head, payload, "\n"):
        f.write(piece)
    return len(crc) + len(head) + len(payload) + 1


def _from_line(body):
    """(key, kind, id, uptime_ms, payload) of an added record's line body."""
    key, kind, rest = body[1:].split(" ", 2)
    if rest[0] == "{":  # the older format: the JSON alone
        fields = json.loads(rest)
        return int(key), kind, fields["id"], fields["uptime_ms"], rest
    rid, uptime_ms, payload = rest.split(" ", 2)
    return int(key), kind, rid, int(uptime_ms), payload


class Outbox:
    def __init__(self, path, max_records=32, delivered_timeout_ms=30000):
        self.path = path
        self.max_records = max_records
        self.delivered_timeout_ms = delivered_timeout_ms
        # Oldest first: [key, kind, id, uptime_ms, payload, persisted, acked_at],
        # acked_at = ticks_ms of an alarm's PUBACK, None until the broker has it.
        self.records = []
        self.next_key = 1
        self.log_bytes = 0
        # None while the flash takes writes; then the error that refused one.
        self.flash_error = None
        self.skipped = self._load()

    def _load(self):
        live = {}
        skipped = 0
        try:
            f = open(self.path)
        except OSError:
            return 0
        with f:
            for line in f:
                self.log_bytes += len(line)
                body = _parse(line)
                if body is None:
                    skipped += 1
                    continue
                try:
                    if body[0] == "+":
                        key, kind, rid, uptime_ms, payload = _from_line(body)
                        live[key] = [key, kind, rid, uptime_ms, payload, True, None]
                    elif body[0] == "-":
                        live.pop(int(body[1:]), None)
                except (ValueError, KeyError, IndexError):
                    # A sound checksum over a line this code cannot read: not
                    # a power cut, so say so instead of failing every boot.
                    print("outbox: unreadable record %r" % body[:60])
                    skipped += 1
        self.records = sorted(live.values(), key=lambda r: r[0])
        if self.records:
            self.next_key = self.records[-1][0] + 1
        if skipped:
            # Never append after a torn line: the next record would join it.
            print("outbox: skipped %d torn/corrupt record(s) in %s" % (skipped, self.path))
            try:
                self._compact()
            except OSError as e:
                self._flash_failed(e)
        return skipped

    def __len__(self):
        return len(self.records)

    def count(self, kind):
        return sum(1 for r in self.records if r[1] == kind)

    def next_to_send(self, now):
        """(key, kind, id, uptime_ms, payload, resend) of the oldest record
        to send at ticks_ms `now`, or None. An alarm the broker has waits for
        `delivered`; once that is overdue it is due again (resend=True)."""
        for r in self.records:
            acked = r[6]
            if acked is None:
                return r[0], r[1], r[2], r[3], r[4], False
            if ticks_diff(now, acked) >= self.delivered_timeout_ms:
                return r[0], r[1], r[2], r[3], r[4], True
        return None

    def add(self, kind, payload, rid=None, uptime_ms=None):
        """Queue a message: `payload` is its JSON, `rid` and `uptime_ms` its
        id and uptime_ms (alarms and events). Heartbeats live in RAM only
        (stale after a reboot)."""
        if kind == HEARTBEAT:
            # The newest heartbeat supersedes one still waiting.
            for r in self.records:
                if r[1] == HEARTBEAT:
                    self._drop(r)
                    break
        if len(self.records) >= self.max_records and not self._make_room(kind):
            print("outbox: full of alarms, dropped new %s" % kind)
            return None
        key = self.next_key
        self.next_key += 1
        persisted = False
        if kind != HEARTBEAT and self.flash_error is None:
            # Written here, not through a helper: an alarm on a torn heap
            # has room for little more than its record (App.carry_out).
            try:
                with open(self.path, "a") as f:
                    self.log_bytes += _added(f, key, kind, rid, uptime_ms, payload)
                persisted = True
            except OSError as e:
                self._flash_failed(e)
        self.records.append([key, kind, rid, uptime_ms, payload, persisted, None])
        return key

    def _flash_failed(self, e):
        self.flash_error = "errno %s" % e.errno
        print("outbox: flash write failed (%s): records stay in RAM until sent,"
              " nothing more is written this boot" % self.flash_error)

    def _make_room(self, kind):
        # Heartbeats go first, then the oldest event; an alarm is never
        # dropped, whether or not the broker has it: a new alarm goes in
        # even beyond the bound.
        for victim_kind in (HEARTBEAT, EVENT):
            for r in self.records:
                if r[1] == victim_kind:
                    print("outbox: full, dropped %s %d" % (r[1], r[0]))
                    self._drop(r)
                    return True
        return kind == ALARM

    def sent(self, key, now):
        """The broker's PUBACK for `key` came at ticks_ms `now`: an event or
        heartbeat is done; an alarm now waits for `delivered`. A record that
        is gone already (its `delivered` beat the PUBACK here) is ignored."""
        for r in self.records:
            if r[0] == key:
                if r[1] == ALARM:
                    r[6] = now
                else:
                    self._drop(r)
                return

    def delivered(self, alarm_id):
        """The gateway stored this alarm: it leaves the outbox. False if it
        is not here (already confirmed, or not ours)."""
        for r in self.records:
            if r[1] == ALARM and r[2] == alarm_id:
                self._drop(r)
                return True
        return False

    def _drop(self, r):
        self.records.remove(r)
        if not r[5] or self.flash_error is not None:
            return
        try:
            if not any(x[5] for x in self.records):
                self._truncate()
            elif self.log_bytes > COMPACT_BYTES:
                self._compact()
            else:
                self._append(_line("-%d" % r[0]))
        except OSError as e:
            self._flash_failed(e)

    def _append(self, line):
        with open(self.path, "a") as f:
            f.write(line)
        self.log_bytes += len(line)

    def _truncate(self):
        # Nothing live: an empty log is correct whether or not this finishes.
        with open(self.path, "w"):
            pass
        self.log_bytes = 0

    def _compact(self):
        tmp = self.path + ".tmp"
        size = 0
        with open(tmp, "w") as f:
            for r in self.records:
                if r[5]:
                    size += _added(f, r[0], r[1], r[2], r[3], r[4])
        os.rename(tmp, self.path)
        self.log_bytes = size
