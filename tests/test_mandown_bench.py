"""`lonewatch bench mandown --data DIR` end to end on a handful of real SisFall
recordings: a readable table, then one JSON line with every figure the issue asks for."""

import argparse
import csv
import json
import os

import pytest

from bench import mandown as bench_mandown
from conftest import SISFALL
from simulator import sisfall

PICK = {"D01", "D13", "D19", "F01", "F05", "F13", "F14"}


def small_dataset(folder):
    """A SisFall-format folder holding trial 1 of a few activities of two subjects."""
    if not (SISFALL / "manifest.csv").exists():
        pytest.skip("SisFall data not found at %s (../shared relative to the repo root)" % SISFALL)
    with open(SISFALL / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["subject"] in ("SA02", "SE06") and r["activity"] in PICK and r["trial"] == "1"]
    for r in rows:
        target = folder / r["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(SISFALL / r["file"], target)
    sisfall.write_manifest(folder, rows)
    return rows


def bench(argv):
    parser = argparse.ArgumentParser()
    bench_mandown.add_arguments(parser)
    return bench_mandown.run(parser.parse_args(argv))


def test_bench_prints_a_table_and_the_figures_as_the_last_json_line(tmp_path, capsys):
    rows = small_dataset(tmp_path)
    assert bench(["--data", str(tmp_path), "--jobs", "2"]) == 0
    out = capsys.readouterr().out.strip().split("\n")
    assert out[0].startswith("man-down benchmark: %d recordings, 2 subjects" % len(rows))
    assert any(line.startswith("F13   fall") for line in out)
    summary = json.loads(out[-1])
    for key in ("sensitivity", "specificity", "false_alarms_per_hour", "per_activity",
                "median_latency_s", "us_per_sample", "cross_validation", "cold_start"):
        assert key in summary, key
    assert summary["falls"] == sum(r["kind"] == "fall" for r in rows)
    assert summary["per_activity"]["F01"]["n"] == 2
    assert summary["sensitivity"] >= 0.75
    assert summary["cross_validation"]["sensitivity"] is not None
    for vm in ("cpython", "micropython"):
        assert summary["us_per_sample"][vm] > 0, summary["cost"][vm]
        assert summary["cost"][vm]["ratio_to_empty_loop"] > 1


def test_bench_refuses_a_folder_without_manifest(tmp_path, capsys):
    assert bench(["--data", str(tmp_path)]) == 2
    assert "no manifest.csv" in capsys.readouterr().err


def test_bench_names_a_corrupt_recording_and_fails_cleanly(tmp_path, capsys):
    (tmp_path / "SA01").mkdir()
    (tmp_path / "manifest.csv").write_text(
        "file,kind,activity,subject,trial,samples\nSA01/F01_SA01_R01.csv.gz,fall,F01,SA01,1,10\n")
    (tmp_path / "SA01" / "F01_SA01_R01.csv.gz").write_bytes(b"not gzip at all")
    assert bench(["--data", str(tmp_path), "--jobs", "1", "--no-cv"]) == 2
    assert "F01_SA01_R01.csv.gz: Not a gzipped file" in capsys.readouterr().err
