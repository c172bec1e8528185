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
"""
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

from simulator import sisfall

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")


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

ALARMS = (mandown.FALL, mandown.NO_MOTION, mandown.TILT)
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
    parser.add_argument("--micropython", default=os.path.join(ROOT, ".venv", "bin", "micropython"),
                        help="micropython binary for the cost measurement")


def _run(detector, samples):
    """First alarm (sample index, code) and whether NOT_WORN came up."""
    feed = detector.feed
    not_worn = False
    for i, (x, y, z) in enumerate(samples):
        event = feed(x, y, z)
        if event:
            if event in ALARMS:
                return i, event, not_worn
            if event == mandown.NOT_WORN:
                not_worn = True
    return -1, 0, not_worn


def _upright(config, walking):
    detector = mandown.Detector(config)
    for x, y, z in walking:
        detector.feed(x, y, z)
    return detector.upright


def _peak_index(samples):
    best, at = -1, 0
    for i, (x, y, z) in enumerate(samples):
        m2 = x * x + y * y + z * z
        if m2 > best:
            best, at = m2, i
    return at


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
                     "peak": _peak_index(samples), "outcomes": outcomes, "cold": cold})
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
            f.write(MPY_SCRIPT % {"firmware": FIRMWARE, "data": data, "repeat": repeat})
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
    grid = GRID[:1] if args.no_cv else GRID
    jobs = []
    for subject, recs in sorted(by_subject.items()):
        walking = [r for code in WALKING for r in recs if r.activity == code]
        walking_path = walking[0].path if walking else None
        if args.limit:
            recs = recs[:args.limit]
        jobs.append((recs, walking_path, grid))
    try:
        if args.jobs > 1:
            with Pool(args.jobs) as pool:
                results = pool.map(_subject_job, jobs, chunksize=1)
        else:
            results = [_subject_job(j) for j in jobs]
    except sisfall.DatasetError as e:
        print("bench mandown: %s" % e, file=sys.stderr)
        return 2
    rows = [row for part in results for row in part]

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
    out.write("took %.0f s\n" % (time.time() - started))
    summary = dict(default)
    summary.update({
        "per_activity": per_activity,
        "per_subject": per_subject,
        "us_per_sample": {impl: c.get("us_per_sample") for impl, c in cost.items()},
        "cost": cost,
        "cold_start": cold,
        "cross_validation": cv,
        "defaults": mandown.DEFAULTS,
        "data": os.path.abspath(args.data),
    })
    out.write(json.dumps(summary, sort_keys=True) + "\n")
    failed = "error" in cost["micropython"]
    return 1 if failed else 0


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="bench_mandown", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
