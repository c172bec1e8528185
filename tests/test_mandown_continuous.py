"""`lonewatch bench mandown --continuous`: one detector for a whole shift, on
a small SisFall-format folder of synthetic recordings (no ../shared needed):
the chaining rules, the figures in the table and the JSON line, and
reproducible orders."""

import argparse
import json

import pytest

from bench import mandown as bench_mandown
from simulator import sisfall, traces

SUBJECTS = ("SX01", "SX02")
TRIALS = 2


def write_folder(folder, codes=None):
    """Two synthetic subjects, two trials of each activity."""
    rows = []
    for n, subject in enumerate(SUBJECTS):
        for trial in range(1, TRIALS + 1):
            recordings = traces.sisfall_like_subject(seed=10 * n + trial)
            for code, samples in recordings.items():
                if codes is not None and code not in codes:
                    continue
                name = "%s/%s_%s_R%02d.csv.gz" % (subject, code, subject, trial)
                (folder / subject).mkdir(exist_ok=True)
                traces.write_csv(str(folder / name), samples)
                rows.append({"file": name, "kind": "fall" if code[0] == "F" else "adl",
                             "activity": code, "subject": subject, "trial": trial,
                             "samples": len(samples)})
    sisfall.write_manifest(folder, rows)
    return rows


def bench(argv, capsys):
    parser = argparse.ArgumentParser()
    bench_mandown.add_arguments(parser)
    code = bench_mandown.run(parser.parse_args(argv))
    captured = capsys.readouterr()
    return code, captured.out.strip().split("\n"), captured.err


@pytest.fixture
def folder(tmp_path):
    write_folder(tmp_path)
    return tmp_path


def test_continuous_mode_reports_the_shift_in_the_table_and_the_json_line(folder, capsys):
    rows = sisfall.read_manifest(str(folder))
    code, out, _ = bench(["--data", str(folder), "--no-cv", "--jobs", "1", "--continuous",
                          "--orders", "1,2"], capsys)
    assert code == 0
    assert any(line.startswith("continuous wear: 2 order(s) 1,2") for line in out)
    assert any(line.startswith("continuous:") for line in out)
    summary = json.loads(out[-1])
    c = summary["continuous"]
    # Every fall of every subject after each of the two shifts.
    assert c["falls"] == 2 * sum(r.kind == "fall" for r in rows)
    assert summary["continuous_sensitivity"] == c["sensitivity"] == 1.0
    # The chained shift is longer than its activities: a walk before each.
    adl_hours = sum(r.samples for r in rows if r.kind == "adl") / sisfall.RATE_HZ / 3600
    walks_hours = sum(r.kind == "adl" for r in rows) * bench_mandown.WALK_BEFORE_S / 3600
    assert c["hours"] >= round(2 * (adl_hours + walks_hours), 2)
    assert summary["continuous_false_per_40h"] == c["false_per_40h"]
    assert c["false_per_40h"] == round(c["false_prealarms"] * 40 / c["hours"], 2)
    assert set(c["false_by_subject"]) == set(SUBJECTS)
    assert c["cancelled"] + c["would_become_alarms"] == c["false_prealarms"]
    assert c["countdown_s"] == 20  # the firmware's default prealarm_s


def test_without_continuous_the_json_line_says_not_measured(folder, capsys):
    code, out, _ = bench(["--data", str(folder), "--no-cv", "--jobs", "1"], capsys)
    assert code == 0
    summary = json.loads(out[-1])
    assert summary["continuous"] is None and summary["continuous_false_per_40h"] is None


def test_activities_are_reached_the_way_a_person_would(folder):
    recordings = [r for r in sisfall.read_manifest(str(folder)) if r.subject == "SX01"]
    by_code = {r.activity: r for r in recordings}
    stream = bench_mandown._Stream(recordings, bench_mandown.random.Random(1), {})
    posture = bench_mandown.STAND
    for code in ("D14", "D16", "D11", "D01"):
        posture = stream.activity(posture, by_code[code])
    assert stream.labels == [
        "walk", "sit down (D07)", "lie down (D12)", "D14",   # turning in bed starts lying
        "sit up (D12)", "stand up (D07)", "walk", "D16",     # and ends lying: up again first
        "walk", "sit down (D07)", "D11",                     # collapsing into a chair starts seated
        "stand up (D07)", "walk", "D01",
    ]
    # Cut in the middle of the time seated / lying, so both halves hold the posture.
    d07 = stream.load(stream.by_code["D07"][0])
    cut = bench_mandown._held_middle(d07, stream.up)
    assert 0.3 * len(d07) < cut < 0.7 * len(d07)


def test_orders_are_seeded_and_reproducible(folder):
    recordings = [r for r in sisfall.read_manifest(str(folder)) if r.subject == "SX02"]
    job = ("SX02", recordings, recordings, [1, 2], {})
    first, second = bench_mandown._continuous_job(job), bench_mandown._continuous_job(job)
    assert first == second
    assert [r["seed"] for r in first] == [1, 2]


def test_a_subject_without_the_recordings_to_chain_with_is_refused_by_name(tmp_path, capsys):
    write_folder(tmp_path, codes={"D01", "D12", "D14", "F01"})   # no sit-down (D07)
    code, _, err = bench(["--data", str(tmp_path), "--no-cv", "--jobs", "1", "--continuous"], capsys)
    assert code == 2
    assert "subject SX01 has no D07 recording" in err


def test_shift_hours_reports_generated_days_in_the_same_units(folder, capsys):
    argv = ["--data", str(folder), "--no-cv", "--jobs", "1", "--shift-hours", "0.25",
            "--wearers", "2"]
    code, out, _ = bench(argv, capsys)
    assert code == 0
    assert any(line.startswith("synthetic shifts: 2 wearer(s), 0.5 h") for line in out)
    summary = json.loads(out[-1])
    s = summary["synthetic"]
    assert s["hours"] == 0.5
    assert summary["synthetic_false_per_40h"] == s["false_per_40h"] == round(
        s["false_prealarms"] * 40 / s["hours"], 2)
    assert s["falls"] == 2 * bench_mandown.FALLS_AFTER_SHIFT
    assert summary["synthetic_sensitivity"] == s["sensitivity"] == 1.0


def test_a_synthetic_shift_is_seeded_and_chains_without_a_jump_in_posture():
    first = bench_mandown._shift_job((3, 0.1, {}))
    assert first == bench_mandown._shift_job((3, 0.1, {}))
    segments = list(traces.shift(3, 0.1))
    assert sum(len(s) for _, s in segments) == int(0.1 * 3600 * traces.RATE_HZ)
    assert segments[0][0] == "walk"
    for (_, before), (_, after) in zip(segments, segments[1:]):
        # Every activity ends walking on, so the next starts where it ended.
        a, b = before[-25:], after[:25]
        gap = [abs(sum(s[k] for s in a) - sum(s[k] for s in b)) / 25 for k in range(3)]
        assert max(gap) < 400


@pytest.mark.parametrize("piece_s", [5, 37, 61])
def test_a_long_stream_played_in_pieces_counts_as_one_played_at_once(piece_s):
    # A fall the wearer gets up from: its pre-alarm is cancelled by a press
    # some seconds later, which pieces of these lengths cut apart.
    # The stream arrives a second at a time, as a generated shift's activities do.
    trace = traces.fall_then_recovers(seed=1)
    second = traces.RATE_HZ
    segments = [("walk" if at < 50 * second else "fall", trace[at:at + second]) for at in range(0, len(trace), second)]
    whole = bench_mandown._play_stream(bench_mandown.mandown.Detector(), segments, 150, 10 ** 9)
    pieces = bench_mandown._play_stream(bench_mandown.mandown.Detector(), segments, 150,
                                        piece_s * traces.RATE_HZ)
    assert whole[0] and all(press is not None for _, _, press, _, _ in whole[0])
    assert pieces == whole
