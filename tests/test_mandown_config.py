"""The "mandown" section of the device config: documented defaults, overrides,
and a clear error for anything the detector cannot use."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))

import mandown  # noqa: E402
from simulator import traces  # noqa: E402


def test_defaults_are_the_documented_ones():
    d = mandown.Detector()
    assert d.params == mandown.DEFAULTS
    assert (mandown.DEFAULTS["no_motion_s"], mandown.DEFAULTS["tilt_deg"],
            mandown.DEFAULTS["tilt_s"]) == (60, 60, 30)
    doc = (ROOT / "docs" / "mandown.md").read_text()
    for key, value in mandown.DEFAULTS.items():
        assert "| `%s` | %s |" % (key, value) in doc, key


def test_event_codes_and_names():
    assert (mandown.NONE, mandown.FALL, mandown.NO_MOTION, mandown.TILT, mandown.CLEARED,
            mandown.NOT_WORN, mandown.WORN) == (0, 1, 2, 3, 4, 5, 6)
    assert [mandown.NAMES[c] for c in range(1, 7)] == [
        "fall", "no_motion", "tilt", "cleared", "not_worn", "worn"]


def test_override_changes_only_that_parameter():
    d = mandown.Detector({"no_motion_s": 90, "impact_g": 2.5})
    assert d.params["no_motion_s"] == 90 and d.params["impact_g"] == 2.5
    assert d.params["tilt_s"] == mandown.DEFAULTS["tilt_s"]


def test_settings_changed_over_the_air_keep_the_learned_upright():
    d = mandown.Detector()
    for x, y, z in traces.fall_then_motionless(walk_s=60)[:50 * 50]:  # the walk only
        assert d.feed(x, y, z) == mandown.NONE
    upright = d.upright
    assert upright is not None
    d.configure({"tilt_s": 45})
    assert d.upright == upright
    assert d.params == dict(mandown.DEFAULTS, tilt_s=45)
    with pytest.raises(ValueError, match="tilt_deg must be below 180"):
        d.configure({"tilt_deg": 200})
    assert d.params == dict(mandown.DEFAULTS, tilt_s=45)  # refused: nothing changed


@pytest.mark.parametrize("config, message", [
    ({"no_motion": 60}, "unknown parameter 'no_motion'"),
    ({"tilt_deg": "60"}, "tilt_deg must be a positive number"),
    ({"tilt_s": True}, "tilt_s must be a positive number"),
    ({"still_mg": -5}, "still_mg must be a positive number"),
    ({"lying_deg": 190}, "lying_deg must be below 180 degrees"),
    ({"hard_impact_g": 1.5}, "hard_impact_g must not be below impact_g"),
    ({"not_worn_mg": 100}, "not_worn_mg must be below still_mg"),
    ({"not_worn_s": 45}, "not_worn_s must be below tilt_s and no_motion_s"),
    ({"walk_s": 10}, "walk_s must be below"),
    ({"walk_min_mg": 1000}, "walk_min_mg must be below walk_max_mg"),
    ({"fall_still_s": 5}, "fall_still_s must not exceed soft_fall_still_s"),
    ({"soft_fall_still_s": 9}, "soft_fall_still_s must be below fall_window_s"),
    ({"firm_impact_g": 1.0}, "firm_impact_g must not be below impact_g"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_config_is_refused_with_a_clear_message(config, message):
    with pytest.raises(ValueError, match="mandown config") as err:
        mandown.Detector(config)
    assert message in str(err.value)
