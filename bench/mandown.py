"""`lonewatch bench mandown --data DIR`: the man-down detector on SisFall-format recordings.

Counting rules (docs/mandown.md says the same):
- A fall recording is detected when the detector emits FALL, NO_MOTION or TILT (the
  device would start its pre-alarm) at or after the impact, the sample with the
  largest |a|. Latency runs from that sample to the event.
- An ADL recording is a false alarm when the detector emits any of those events.
- Each recording runs on a fresh detector that already knows the wearer's upright,
  learned from the subject's first walking recording, as a device worn since the
  start of the shift would. The same figures without that ("cold start") are
  reported too.
- Cross-validation: leave one subject out. For each subject, the parameter grid
  point that best meets both targets (sensitivity 98 %, specificity 99.5 %) on
  all the other subjects is the one tested on it.
- --continuous chains each subject's recordings into worn shifts; --shift-hours
  runs generated days of simulated wearers (simulator/traces.shift). Both count
  false pre-alarms per 40 h and falls caught after the shift.
"""
import bisect
import copy
import importlib.util
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

from simulator import firmware_logic, sisfall, traces
from simulator.paths import FIRMWARE, MICROPYTHON


def _load_detector():
    # The firmware's own file, as the device runs it; loaded by path so the
    # firmware folder does not shadow anything on sys.path.
    if "mandown" in sys.modules:
        return sys.modules["mandown"]
    spec = importlib.util.spec_from_file_location("mandown", os.path.join(FIRMWARE, "mandown.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["mandown"] = module
    spec.loader.exec_module(module)
    return module


mandown = _load_detector()

WALKING = ("D01", "D02")

# Points the cross-validation chooses among: the thresholds of the fall rule
# that trade sensitivity against specificity. Index 0 is the shipped default.
GRID_AXES = {
    "impact_g": (1.4, 1.6, 1.8),
    "soft_fall_still_s": (3, 4, 5),
    "posture_change_deg": (50, 60, 70),
    "firm_impact_g": (2.5, 3.0),
    "hard_impact_g": (3.0, 4.0),
}


def _grid():
    points = [{}]
    for values in itertools.product(*GRID_AXES.values()):
        point = dict(zip(GRID_AXES, values))
        if all(mandown.DEFAULTS[k] == v for k, v in point.items()):
            continue
        try:
            mandown.validate(point)
        except ValueError:
            continue  # e.g. a firm impact below the impact threshold
        points.append(point)
    return points


GRID = _grid()


def add_arguments(parser):
    parser.add_argument("--data", required=True, help="folder with manifest.csv and SUBJECT/*.csv.gz")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all cores)")
    parser.add_argument("--subjects", default="",
                        help="comma-separated subjects to include (default: all)")
    parser.add_argument("--limit", type=int, default=0,
                        help="at most this many recordings per subject (smoke runs)")
    parser.add_argument("--no-cv", action="store_true",
                        help="skip the grid and the cross-validation (defaults only)")
    parser.add_argument("--micropython", default=str(MICROPYTHON),
                        help="micropython binary for the cost measurement")
    parser.add_argument("--continuous", action="store_true",
                        help="also chain each subject's activities into one worn shift"
                             " through one detector (docs/mandown.md, continuous wear)")
    parser.add_argument("--orders", default="1,2,3",
                        help="seeds of the activity orders chained with --continuous (default: 1,2,3)")
    parser.add_argument("--shift-hours", type=float, default=0,
                        help="also run the detector over this many hours of generated daily"
                             " activity per simulated wearer (docs/mandown.md, synthetic shifts)")
    parser.add_argument("--wearers", type=int, default=4,
                        help="simulated wearers for --shift-hours (default: 4)")


def _run(detector, samples):
    """First alarm (sample index, code) and whether NOT_WORN came up."""
    feed = detector.feed
    not_worn = False
    for i, (x, y, z) in enumerate(samples):
        event = feed(x, y, z)
        if event:
            if event in mandown.DOWN:
                return i, event, not_worn
            if event == mandown.NOT_WORN:
                not_worn = True
    return -1, 0, not_worn


def _upright(config, walking):
    detector = mandown.Detector(config)
    for x, y, z in walking:
        detector.feed(x, y, z)
    return detector.upright


def _subject_job(job):
    """Runs every grid point (and the cold start) on one subject's recordings."""
    recordings, walking_path, grid = job
    walking = sisfall.read_csv(walking_path) if walking_path else None
    uprights = [(_upright(c, walking) if walking else None) for c in grid]
    rows = []
    for rec in recordings:
        samples = rec.load()
        outcomes = []
        for config, upright in zip(grid, uprights):
            detector = mandown.Detector(config)
            if upright:
                detector.assume_upright(*upright)
            outcomes.append(_run(detector, samples))
        cold = _run(mandown.Detector(grid[0]), samples)
        rows.append({"file": rec.file, "kind": rec.kind, "activity": rec.activity,
                     "subject": rec.subject, "samples": len(samples),
                     "peak": traces.peak_index(samples), "outcomes": outcomes, "cold": cold})
    return rows


def _detected(row, outcome):
    at = outcome[0]
    return at >= 0 and (row["kind"] == "adl" or at >= row["peak"])


def _score(rows, pick):
    falls = [r for r in rows if r["kind"] == "fall"]
    adls = [r for r in rows if r["kind"] == "adl"]
    hits = [r for r in falls if _detected(r, pick(r))]
    alarms = [r for r in adls if _detected(r, pick(r))]
    adl_hours = sum(r["samples"] for r in adls) / sisfall.RATE_HZ / 3600.0
    latencies = [(pick(r)[0] - r["peak"]) / sisfall.RATE_HZ for r in hits]
    return {
        "falls": len(falls), "falls_detected": len(hits),
        "adl": len(adls), "adl_with_alarm": len(alarms),
        "sensitivity": round(len(hits) / len(falls), 4) if falls else None,
        "specificity": round(1 - len(alarms) / len(adls), 4) if adls else None,
        "false_alarms_per_hour": round(len(alarms) / adl_hours, 3) if adl_hours else None,
        "median_latency_s": round(statistics.median(latencies), 2) if latencies else None,
    }


# The targets: at most 2 % of falls missed, at most 0.5 % of ADL alarmed.
MISS_TARGET = 0.02
FALSE_ALARM_TARGET = 0.005


def _objective(rows, k):
    # How far the worse of the two rates is from its target (below 1 meets
    # both); then the plain error count.
    falls = missed = adl = alarmed = 0
    for r in rows:
        hit = _detected(r, r["outcomes"][k])
        if r["kind"] == "fall":
            falls += 1
            missed += not hit
        else:
            adl += 1
            alarmed += hit
    worst = max(missed / max(falls, 1) / MISS_TARGET, alarmed / max(adl, 1) / FALSE_ALARM_TARGET)
    return worst, missed + alarmed


def _cross_validate(rows):
    subjects = sorted({r["subject"] for r in rows})
    picks = {}
    for held_out in subjects:
        train = [r for r in rows if r["subject"] != held_out]
        # Ties go to the lower index, i.e. towards the shipped default.
        picks[held_out] = min(range(len(GRID)), key=lambda k: (_objective(train, k), k))
    tested = _score(rows, lambda r: r["outcomes"][picks[r["subject"]]])
    chosen = {}
    for s, k in picks.items():
        chosen.setdefault(json.dumps(GRID[k], sort_keys=True), []).append(s)
    tested["method"] = "leave-one-subject-out over %d grid points" % len(GRID)
    tested["chosen"] = chosen
    return tested


def _per_subject(rows, pick):
    table = {}
    for r in rows:
        t = table.setdefault(r["subject"], {"falls": 0, "falls_detected": 0, "adl": 0, "adl_with_alarm": 0})
        hit = _detected(r, pick(r))
        if r["kind"] == "fall":
            t["falls"] += 1
            t["falls_detected"] += hit
        else:
            t["adl"] += 1
            t["adl_with_alarm"] += hit
    return dict(sorted(table.items()))


def _per_activity(rows, pick):
    table = {}
    for r in rows:
        t = table.setdefault(r["activity"], {"kind": r["kind"], "n": 0, "alarms": 0, "not_worn": 0})
        t["n"] += 1
        outcome = pick(r)
        t["alarms"] += _detected(r, outcome)
        t["not_worn"] += outcome[2]
    return dict(sorted(table.items()))

# ---- continuous wear ---------------------------------------------------------
#
# A worn device runs one detector all shift. Chaining rules (docs/mandown.md
# says the same):
# - each subject's ADL recordings in a seeded random order, one detector for
#   the whole chain, 10 s of the subject's own walking (a seeded slice of one
#   of their D01 recordings) before each activity;
# - an activity that starts sitting or lying is reached the way a person
#   reaches it, through the subject's own recordings: sitting down in a chair
#   (a D07 up to the middle of the time seated) and lying down from sitting
#   (a D12 up to the middle of the time lying); an activity that ends sitting
#   or lying is left the same way (the rest of a D07 or D12) before the walk;
# - after a pre-alarm the detector is reset when the wearer would press to
#   cancel (the first 0.5 s in which they move), as firmware/app.py does;
# - then each of the subject's falls runs on a copy of the state at the end of
#   the chain, reached by the same rules (walk, then sit down if the fall
#   starts seated).

STAND, SIT, LIE = 0, 1, 2
# SisFall's protocol: activities that do not start or end standing.
STARTS = {"D11": SIT, "D12": SIT, "D13": SIT, "D14": LIE,
          "F08": SIT, "F09": SIT, "F13": SIT, "F14": SIT, "F15": SIT}
ENDS = {"D11": SIT, "D12": SIT, "D13": SIT, "D14": LIE}
# One step between postures: the recording it is taken from, which part, its label.
MOVES = {(STAND, SIT): ("D07", 0, "sit down"), (SIT, STAND): ("D07", 1, "stand up"),
         (SIT, LIE): ("D12", 0, "lie down"), (LIE, SIT): ("D12", 1, "sit up")}
WALK_BEFORE_S = 10
WALK_SOURCE = "D01"
# An alarm this soon after a join may be the join's doing; reported apart.
NEAR_JOIN_S = 5
HOURS_PER_SHIFT = 40
PREALARM_S = firmware_logic.config.SPEC["prealarm_s"][0]


def _mean(samples):
    n = len(samples) or 1
    return (sum(s[0] for s in samples) / n, sum(s[1] for s in samples) / n,
            sum(s[2] for s in samples) / n)


def _held_middle(samples, up):
    """Sample index in the middle of the longest stretch of 0.5 s blocks turned
    at least half as far from `up` as the recording ever is: the middle of the
    time seated in a sit-down, or lying in a lie-down."""
    block = mandown.BLOCK
    angles = []
    for i in range(0, len(samples) - block + 1, block):
        m = _mean(samples[i:i + block])
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, mandown._cosine(
            m[0], m[1], m[2], up[0], up[1], up[2]))))))
    if not angles:
        return len(samples) // 2
    limit = max(angles) / 2
    best = (0, 0, 0)
    start = None
    for k, a in enumerate(angles + [-1.0]):
        if a >= limit and start is None:
            start = k
        elif a < limit and start is not None:
            if k - start > best[0]:
                best = (k - start, start, k)
            start = None
    return (best[1] + best[2]) * block // 2


class _Stream:
    """One subject's chained samples and the segments they came from."""

    def __init__(self, recordings, rng, cache):
        self.rng = rng
        self.cache = cache
        self.by_code = {}
        for rec in sorted(recordings, key=lambda r: r.file):
            self.by_code.setdefault(rec.activity, []).append(rec)
        for code in (WALK_SOURCE,) + tuple(m[0] for m in MOVES.values()):
            if code not in self.by_code:
                raise sisfall.DatasetError(
                    "subject %s has no %s recording, needed to chain its activities"
                    % (recordings[0].subject, code))
        self.samples = []
        self.starts = []   # sample index where each segment starts
        self.labels = []
        self.up = _mean(self.load(self.by_code[WALK_SOURCE][0]))

    def load(self, rec):
        if rec.file not in self.cache:
            self.cache[rec.file] = rec.load()
        return self.cache[rec.file]

    def add(self, label, samples):
        self.starts.append(len(self.samples))
        self.labels.append(label)
        self.samples.extend(samples)

    def walk(self):
        rec = self.rng.choice(self.by_code[WALK_SOURCE])
        samples = self.load(rec)
        n = WALK_BEFORE_S * sisfall.RATE_HZ
        # Not the recording's first seconds: the subject stands still there.
        start = self.rng.randrange(min(len(samples) - n, 5 * sisfall.RATE_HZ), len(samples) - n + 1)
        self.add("walk", samples[start:start + n])

    def go(self, posture, target):
        while posture != target:
            step = posture + (1 if target > posture else -1)
            code, part, label = MOVES[(posture, step)]
            samples = self.load(self.rng.choice(self.by_code[code]))
            cut = _held_middle(samples, self.up)
            self.add("%s (%s)" % (label, code), samples[:cut] if part == 0 else samples[cut:])
            posture = step
        return posture

    def activity(self, posture, rec):
        """From `posture`, up and walking, to where `rec` starts, then `rec`; its end posture."""
        self.go(posture, STAND)
        self.walk()
        self.go(STAND, STARTS.get(rec.activity, STAND))
        self.add(rec.activity, self.load(rec))
        return ENDS.get(rec.activity, STAND)

    def segments(self):
        ends = self.starts[1:] + [len(self.samples)]
        return ((label, self.samples[a:b]) for label, a, b in zip(self.labels, self.starts, ends))


def _press_at(samples, start, seconds, still_mg):
    """When a wearer who got a pre-alarm at `start` cancels it: at the end of
    the first 0.5 s block within `seconds` in which they move as much as
    still_mg (rms against the previous block's mean, as the detector
    measures); None if they stay still throughout (the pre-alarm becomes an
    alarm)."""
    block = mandown.BLOCK
    end = min(len(samples), start + int(seconds * sisfall.RATE_HZ))
    prev = _mean(samples[max(0, start - block):start]) if start else None
    limit = still_mg * still_mg * block
    for i in range(start, end - block + 1, block):
        chunk = samples[i:i + block]
        if prev is not None:
            ss = sum((x - prev[0]) ** 2 + (y - prev[1]) ** 2 + (z - prev[2]) ** 2 for x, y, z in chunk)
            if ss >= limit:
                return i + block
        prev = _mean(chunk)
    return None


def _play(detector, samples, still_mg, start=0, stop=None, countdown=(-1, -1)):
    """Feeds samples[start:stop] (by default all) as the firmware does: a
    pre-alarm counts down PREALARM_S, during which the detector's further
    events change nothing; the wearer's cancelling press resets the detector
    (firmware/app.py). A pre-alarm nobody cancels becomes an alarm, and the
    detector re-arms by itself once the wearer is up and moving. Returns
    (sample index, event code, press index or None) of every pre-alarm, and
    the countdown (press index, counting until) to go on with."""
    feed = detector.feed
    fired = []
    press, counting_until = countdown
    for i in range(start, len(samples) if stop is None else stop):
        x, y, z = samples[i]
        event = feed(x, y, z)
        if i == press:
            detector.reset()
        if event in mandown.DOWN and i >= counting_until:
            press = _press_at(samples, i + 1, PREALARM_S, still_mg)
            fired.append((i, event, press))
            if press is None:
                press, counting_until = -1, i + PREALARM_S * sisfall.RATE_HZ
            else:
                counting_until = press
    return fired, (press, counting_until)


# What a piece of a long stream keeps of the next one: the countdown that a
# pre-alarm near its end starts, and a block to measure the wearer's press
# against (_press_at).
_LOOKAHEAD = PREALARM_S * sisfall.RATE_HZ + mandown.BLOCK


def _play_stream(detector, segments, still_mg, piece_samples):
    """_play over a stream of (name, samples) segments too long to hold at
    once, about piece_samples at a time: a pre-alarm near the end of a piece
    is counted, cancelled and reset as in one go. Returns (stream index,
    event code, press or None, segment name, seconds into it) of every
    pre-alarm, and the stream's length."""
    samples, names, starts = [], [], []
    offset = begin = 0  # the stream index of samples[0]; the first sample not played
    countdown = (-1, -1)
    out = []

    def play(stop):
        nonlocal countdown
        fired, countdown = _play(detector, samples, still_mg, begin, stop, countdown)
        for at, code, press in fired:
            k = bisect.bisect_right(starts, at) - 1
            out.append((offset + at, code, None if press is None else offset + press, names[k],
                        (at - starts[k]) / sisfall.RATE_HZ))

    for name, segment in segments:
        starts.append(len(samples))
        names.append(name)
        samples.extend(segment)
        if len(samples) - begin >= piece_samples + _LOOKAHEAD:
            stop = len(samples) - _LOOKAHEAD
            play(stop)
            cut = stop - mandown.BLOCK
            k = bisect.bisect_right(starts, cut) - 1
            names, starts = names[k:], [s - cut for s in starts[k:]]
            samples = samples[cut:]
            offset += cut
            begin = stop - cut
            countdown = (countdown[0] - cut, countdown[1] - cut)
    play(len(samples))
    return out, offset + len(samples)


def _continuous_job(job):
    """One subject: its chained shift for each seed, then its falls after each shift."""
    subject, recordings, selected, seeds, config = job
    still_mg = mandown.validate(config)["still_mg"]
    cache = {}
    adls = sorted((r for r in selected if r.kind == "adl"), key=lambda r: r.file)
    falls = sorted((r for r in selected if r.kind == "fall"), key=lambda r: r.file)
    out = []
    for seed in seeds:
        rng = random.Random("%s/%d" % (subject, seed))
        order = list(adls)
        rng.shuffle(order)
        stream = _Stream(recordings, rng, cache)
        posture = STAND
        stream.walk()  # the shift starts on the way in
        for rec in order:
            posture = stream.activity(posture, rec)
        detector = mandown.Detector(config)
        alarms = []
        fired, _ = _play_stream(detector, stream.segments(), still_mg, len(stream.samples))
        for at, code, press, label, into in fired:
            alarms.append({"event": mandown.NAMES[code], "segment": label, "into_s": round(into, 1),
                           "at_s": round(at / sisfall.RATE_HZ, 1), "moved": press is not None})
        result = {"subject": subject, "seed": seed, "samples": len(stream.samples),
                  "alarms": alarms, "falls": []}
        for rec in falls:
            prefix = _Stream(recordings, random.Random("%s/%d/%s" % (subject, seed, rec.file)), cache)
            prefix.activity(posture, rec)
            begin = prefix.starts[-1]
            peak = begin + traces.peak_index(prefix.samples[begin:])
            fired, _ = _play(copy.deepcopy(detector), prefix.samples, still_mg)
            after = [at for at, _, _ in fired if at >= peak]
            result["falls"].append({
                "file": rec.file, "activity": rec.activity, "detected": bool(after),
                "latency_s": round((after[0] - peak) / sisfall.RATE_HZ, 2) if after else None,
                "before_impact": sum(1 for at, _, _ in fired if at < peak)})
        out.append(result)
    return out


def _per_40h(n, hours):
    return round(n * HOURS_PER_SHIFT / hours, 2) if hours else None


def _long_run(samples, alarms, falls, latencies):
    """The figures a long run shares, continuous or synthetic: its false
    pre-alarms in `samples` of wear, by activity and event, what they would
    have cost the wearer, and the falls after it: `latencies` (s) of the
    `falls` that were caught."""
    hours = samples / sisfall.RATE_HZ / 3600.0
    by_activity, by_event = {}, {}
    for a in alarms:
        by_activity[a["segment"]] = by_activity.get(a["segment"], 0) + 1
        by_event[a["event"]] = by_event.get(a["event"], 0) + 1
    cancelled = sum(1 for a in alarms if a["moved"])
    return {
        "hours": round(hours, 2),
        "false_prealarms": len(alarms),
        "false_per_40h": _per_40h(len(alarms), hours),
        "false_by_activity": dict(sorted(by_activity.items(), key=lambda kv: (-kv[1], kv[0]))),
        "false_by_event": dict(sorted(by_event.items())),
        "cancelled": cancelled,
        "would_become_alarms": len(alarms) - cancelled,
        "falls": falls,
        "falls_detected": len(latencies),
        "sensitivity": round(len(latencies) / falls, 4) if falls else None,
        "median_latency_s": round(statistics.median(latencies), 2) if latencies else None,
    }


def _continuous_summary(results):
    alarms = [dict(a, subject=r["subject"]) for r in results for a in r["alarms"]]
    falls = [f for r in results for f in r["falls"]]
    hits = [f for f in falls if f["detected"]]
    by_subject, by_seed = {}, {}
    subject_hours = {}
    for r in results:
        subject_hours[r["subject"]] = subject_hours.get(r["subject"], 0) + r["samples"] / sisfall.RATE_HZ / 3600.0
        by_seed[str(r["seed"])] = by_seed.get(str(r["seed"]), 0) + len(r["alarms"])
    for s, h in sorted(subject_hours.items()):
        n = sum(1 for a in alarms if a["subject"] == s)
        by_subject[s] = {"false_prealarms": n, "hours": round(h, 2), "per_40h": _per_40h(n, h)}
    return {
        "orders": sorted({r["seed"] for r in results}),
        **_long_run(sum(r["samples"] for r in results), alarms, len(falls), [f["latency_s"] for f in hits]),
        "false_prealarms_by_order": by_seed,
        "false_by_subject": by_subject,
        "false_within_%ds_of_a_join" % NEAR_JOIN_S: sum(1 for a in alarms if a["into_s"] < NEAR_JOIN_S),
        "countdown_s": PREALARM_S,
        "falls_missed": sorted(f["file"] for f in falls if not f["detected"]),
        "prealarms_before_impact": sum(f["before_impact"] for f in falls),
        "false_prealarms_list": alarms,
    }


def _print_breakdown(c, out):
    if c["false_by_activity"]:
        out.write("  by activity: %s\n" % "  ".join("%s %d" % kv for kv in c["false_by_activity"].items()))
        out.write("  by event: %s\n" % "  ".join("%s %d" % kv for kv in c["false_by_event"].items()))


def _print_continuous(c, out):
    out.write("continuous wear: %d order(s) %s of each subject's ADL, %.1f h chained\n"
              % (len(c["orders"]), ",".join(str(s) for s in c["orders"]), c["hours"]))
    out.write("  false pre-alarms %d = %.2f per 40 h (per order: %s); %d within %d s of a join\n"
              % (c["false_prealarms"], c["false_per_40h"] or 0,
                 " ".join("%s" % n for n in c["false_prealarms_by_order"].values()),
                 c["false_within_%ds_of_a_join" % NEAR_JOIN_S], NEAR_JOIN_S))
    out.write("  under the %d s countdown: %d cancelled (wearer moving), %d would become alarms"
              " (wearer still throughout)\n" % (c["countdown_s"], c["cancelled"], c["would_become_alarms"]))
    _print_breakdown(c, out)
    out.write("  by subject (per 40 h): %s\n" % "  ".join(
        "%s %.1f" % (s, t["per_40h"] or 0) for s, t in c["false_by_subject"].items()))
    out.write("  falls after the shift: %d/%d (%.2f%%), median latency %s s, %d pre-alarms before"
              " an impact\n" % (c["falls_detected"], c["falls"], 100 * (c["sensitivity"] or 0),
                                c["median_latency_s"], c["prealarms_before_impact"]))


# ---- synthetic shifts ----------------------------------------------------------
#
# simulator/traces.py generates a wearer's day (walking, stairs, desk, bench
# work, kneeling, bending, dropping into a chair, jumps, stumbles, the device
# put down for a break) at any length. One detector per wearer all shift,
# played like the continuous chain; then falls on copies of its final state.

SHIFT_CHUNK_S = 600       # the stream is played in pieces of about this length
FALLS_AFTER_SHIFT = 20    # per wearer


def _shift_job(job):
    wearer, hours, config = job
    still_mg = mandown.validate(config)["still_mg"]
    detector = mandown.Detector(config)
    fired, done = _play_stream(detector, traces.shift(wearer, hours), still_mg, SHIFT_CHUNK_S * sisfall.RATE_HZ)
    alarms = [{"event": mandown.NAMES[code], "segment": name, "at_s": round(at / sisfall.RATE_HZ, 1),
               "moved": press is not None} for at, code, press, name, _ in fired]
    falls = []
    for k in range(FALLS_AFTER_SHIFT):
        # A short walk, the fall, lying still.
        fall = traces.fall_then_motionless("%s/%d" % (wearer, k), traces.mounting(wearer), after_s=20, walk_s=10)
        peak = traces.peak_index(fall)
        after = [at for at, _, _ in _play(copy.deepcopy(detector), fall, still_mg)[0] if at >= peak]
        falls.append((after[0] - peak) / sisfall.RATE_HZ if after else None)
    return {"wearer": wearer, "samples": done, "alarms": alarms, "falls": falls}


def _shift_summary(results):
    alarms = [a for r in results for a in r["alarms"]]
    falls = [f for r in results for f in r["falls"]]
    return {
        "wearers": len(results),
        **_long_run(sum(r["samples"] for r in results), alarms, len(falls), [f for f in falls if f is not None]),
        "false_by_wearer": {str(r["wearer"]): len(r["alarms"]) for r in results},
        "false_prealarms_list": alarms,
    }


def _print_shift(c, out):
    out.write("synthetic shifts: %d wearer(s), %.1f h of generated daily activity\n"
              % (c["wearers"], c["hours"]))
    out.write("  false pre-alarms %d = %.2f per 40 h (per wearer: %s); %d cancelled, %d would become"
              " alarms\n" % (c["false_prealarms"], c["false_per_40h"] or 0,
                              " ".join(str(n) for n in c["false_by_wearer"].values()),
                              c["cancelled"], c["would_become_alarms"]))
    _print_breakdown(c, out)
    out.write("  falls after the shift: %d/%d (%.2f%%), median latency %s s\n"
              % (c["falls_detected"], c["falls"], 100 * (c["sensitivity"] or 0), c["median_latency_s"]))


MPY_SCRIPT = """
import sys, time
from array import array
sys.path.insert(0, %(firmware)r)
import mandown
# A flat int16 array: the chunk fits the small default heap, as it would on a device.
samples = array("h")
with open(%(data)r) as f:
    for line in f:
        for v in line.split(","):
            samples.append(int(v))

class Empty:
    def feed(self, x, y, z):
        return 0

def loop(detector):
    feed = detector.feed
    s = samples
    t = time.ticks_us()
    for i in range(0, len(s), 3):
        feed(s[i], s[i + 1], s[i + 2])
    return time.ticks_diff(time.ticks_us(), t)

best_d = best_e = None
for _ in range(%(repeat)d):
    e = loop(Empty())
    d = loop(mandown.Detector())
    best_e = e if best_e is None or e < best_e else best_e
    best_d = d if best_d is None or d < best_d else best_d
print(len(samples) // 3, best_d, best_e)
"""


def _time_cpython(samples, repeat=3):
    class Empty:
        def feed(self, x, y, z):
            return 0

    def loop(detector):
        feed = detector.feed
        t = time.process_time()
        for x, y, z in samples:
            feed(x, y, z)
        return time.process_time() - t

    best_d = min(loop(mandown.Detector()) for _ in range(repeat))
    best_e = min(loop(Empty()) for _ in range(repeat))
    return _cost(len(samples), best_d * 1e6, best_e * 1e6)


def _time_micropython(binary, samples, repeat=3):
    if not os.path.exists(binary):
        return {"error": "no micropython binary at %s" % binary}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "samples.csv")
        with open(data, "w") as f:
            f.writelines("%d,%d,%d\n" % s for s in samples)
        script = os.path.join(tmp, "time_mandown.py")
        with open(script, "w") as f:
            f.write(MPY_SCRIPT % {"firmware": str(FIRMWARE), "data": data, "repeat": repeat})
        done = subprocess.run([binary, script], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"error": "micropython exit %d: %s" % (done.returncode, (done.stdout + done.stderr).strip()[-500:])}
    n, detector_us, empty_us = (int(v) for v in done.stdout.split())
    return _cost(n, detector_us, empty_us)


def _cost(n, detector_us, empty_us):
    per_sample = detector_us / n
    return {
        "us_per_sample": round(per_sample, 2),
        "empty_loop_us_per_sample": round(empty_us / n, 2),
        "ratio_to_empty_loop": round(detector_us / empty_us, 2) if empty_us else None,
        "ms_per_second_of_data": round(per_sample * sisfall.RATE_HZ / 1000, 3),
    }


def _timing_samples(recordings):
    # A walk, a fall and a sit-down: the three kinds of block the detector sees most.
    picked = []
    for code in ("D01", "F01", "D07"):
        for rec in recordings:
            if rec.activity == code:
                picked.extend(rec.load())
                break
    return picked or recordings[0].load()


def _print_table(per_activity, out):
    out.write("%-5s %-4s %5s %7s %6s %8s\n" % ("code", "kind", "n", "alarms", "rate", "not_worn"))
    for code, t in per_activity.items():
        out.write("%-5s %-4s %5d %7d %5.1f%% %8d\n" % (
            code, t["kind"], t["n"], t["alarms"], 100.0 * t["alarms"] / t["n"], t["not_worn"]))


def _map(fn, jobs, processes):
    if processes > 1:
        with Pool(processes) as pool:
            return pool.map(fn, jobs, chunksize=1)
    return [fn(j) for j in jobs]


def run(args):
    out = sys.stdout
    started = time.time()
    try:
        recordings = sisfall.read_manifest(args.data)
    except sisfall.DatasetError as e:
        print("bench mandown: %s" % e, file=sys.stderr)
        return 2
    wanted = {s.strip() for s in args.subjects.split(",") if s.strip()}
    by_subject = {}
    for rec in recordings:
        if not wanted or rec.subject in wanted:
            by_subject.setdefault(rec.subject, []).append(rec)
    if not by_subject:
        print("bench mandown: no recordings selected in %s" % args.data, file=sys.stderr)
        return 2
    try:
        orders = [int(s) for s in args.orders.split(",") if s.strip()]
    except ValueError:
        print("bench mandown: --orders must be comma-separated integers, not %r" % args.orders,
              file=sys.stderr)
        return 2
    if args.shift_hours < 0 or args.wearers < 1:
        print("bench mandown: --shift-hours must not be negative and --wearers must be at least 1",
              file=sys.stderr)
        return 2
    grid = GRID[:1] if args.no_cv else GRID
    jobs = []
    chains = []
    for subject, recs in sorted(by_subject.items()):
        walking = [r for code in WALKING for r in recs if r.activity == code]
        walking_path = walking[0].path if walking else None
        selected = recs[:args.limit] if args.limit else recs
        jobs.append((selected, walking_path, grid))
        chains.append((subject, recs, selected, orders, grid[0]))
    try:
        rows = [row for part in _map(_subject_job, jobs, args.jobs) for row in part]
        continuous = None
        if args.continuous:
            continuous = _continuous_summary(
                [r for part in _map(_continuous_job, chains, args.jobs) for r in part])
    except sisfall.DatasetError as e:
        print("bench mandown: %s" % e, file=sys.stderr)
        return 2
    synthetic = None
    if args.shift_hours:
        synthetic = _shift_summary(_map(_shift_job, [(w, args.shift_hours, grid[0])
                                                     for w in range(1, args.wearers + 1)], args.jobs))

    default = _score(rows, lambda r: r["outcomes"][0])
    per_activity = _per_activity(rows, lambda r: r["outcomes"][0])
    per_subject = _per_subject(rows, lambda r: r["outcomes"][0])
    cold = _score(rows, lambda r: r["cold"])
    cv = None if args.no_cv else _cross_validate(rows)
    timing_samples = _timing_samples([r for recs in by_subject.values() for r in recs])
    cost = {"cpython": _time_cpython(timing_samples),
            "micropython": _time_micropython(args.micropython, timing_samples)}

    out.write("man-down benchmark: %d recordings, %d subjects, %s\n"
              % (len(rows), len(by_subject), args.data))
    _print_table(per_activity, out)
    out.write("per subject (falls detected/falls, ADL with alarm/ADL): %s\n" % "  ".join(
        "%s %d/%d %d/%d" % (s, t["falls_detected"], t["falls"], t["adl_with_alarm"], t["adl"])
        for s, t in per_subject.items()))
    out.write("defaults:     sensitivity %.2f%% (%d/%d)  specificity %.2f%% (%d/%d ADL with alarm)"
              "  %.3f false alarms/h  median latency %s s\n" % (
                  100 * (default["sensitivity"] or 0), default["falls_detected"], default["falls"],
                  100 * (default["specificity"] or 0), default["adl_with_alarm"], default["adl"],
                  default["false_alarms_per_hour"] or 0, default["median_latency_s"]))
    out.write("cold start:   sensitivity %.2f%%  specificity %.2f%%  (no upright learned beforehand)\n"
              % (100 * (cold["sensitivity"] or 0), 100 * (cold["specificity"] or 0)))
    if cv:
        out.write("cross-valid.: sensitivity %.2f%%  specificity %.2f%%  (%s)\n"
                  % (100 * (cv["sensitivity"] or 0), 100 * (cv["specificity"] or 0), cv["method"]))
    for impl, c in cost.items():
        if "error" in c:
            out.write("cost %-11s %s\n" % (impl, c["error"]))
        else:
            out.write("cost %-11s %.2f us/sample (empty loop %.2f, ratio %.1f) = %.3f ms per s of data\n"
                      % (impl, c["us_per_sample"], c["empty_loop_us_per_sample"],
                         c["ratio_to_empty_loop"], c["ms_per_second_of_data"]))
    if continuous:
        _print_continuous(continuous, out)
        out.write("continuous:   %.2f false pre-alarms per 40 h  falls after the shift %.2f%%\n"
                  % (continuous["false_per_40h"] or 0, 100 * (continuous["sensitivity"] or 0)))
    if synthetic:
        _print_shift(synthetic, out)
        out.write("synthetic:    %.2f false pre-alarms per 40 h  falls after the shift %.2f%%\n"
                  % (synthetic["false_per_40h"] or 0, 100 * (synthetic["sensitivity"] or 0)))
    out.write("took %.0f s\n" % (time.time() - started))
    summary = dict(default)
    summary.update({
        "per_activity": per_activity,
        "per_subject": per_subject,
        "us_per_sample": {impl: c.get("us_per_sample") for impl, c in cost.items()},
        "cost": cost,
        "cold_start": cold,
        "cross_validation": cv,
        "continuous": continuous,
        "continuous_false_per_40h": continuous["false_per_40h"] if continuous else None,
        "continuous_sensitivity": continuous["sensitivity"] if continuous else None,
        "synthetic": synthetic,
        "synthetic_false_per_40h": synthetic["false_per_40h"] if synthetic else None,
        "synthetic_sensitivity": synthetic["sensitivity"] if synthetic else None,
        "defaults": mandown.DEFAULTS,
        "data": os.path.abspath(args.data),
    })
    out.write(json.dumps(summary, sort_keys=True) + "\n")
    failed = "error" in cost["micropython"]
    return 1 if failed else 0


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="lonewatch bench mandown", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
