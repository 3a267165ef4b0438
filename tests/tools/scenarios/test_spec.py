"""Scenario definitions: the committed ones are valid; bad ones are refused with the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.scenarios.render import DEFINITIONS
from tools.scenarios.spec import MIN_ALERT, SpecError, implied_alerts, load_spec

TUNING = ["normal", "leaves_and_returns", "second_person", "phone_used", "book_on_desk", "camera_covered",
          "camera_knocked", "looking_away", "talking", "substitute_candidate"]
CHECK = ["quiet_session", "steps_out", "visitor_right", "phone_low", "book_left", "reads_question",
         "lens_covered_late", "looks_down_twice", "knocked_early", "impostor_late", "glances_at_keyboard",
         "invigilator_passes", "phone_half_hidden", "espresso_on_desk"]
# honest: no alert at all
QUIET = {"normal", "quiet_session", "glances_at_keyboard", "invigilator_passes", "espresso_on_desk"}
HEAD = """
name = "{name}"
description = "test"
view = "close"
set = "tuning"
duration = {duration}
enrolled = "franck_02045.jpg"
calibration_seconds = 10.0
"""
SEATED = """
[[segments]]
start = {start}
end = {end}
candidate = "franck_seated"
"""


def alert(kind: str, start: float, end: float) -> str:
    return f'\n[[alerts]]\nkind = "{kind}"\nstart = {start}\nend = {end}\nallowed_delay = 4.0\n'


def write(tmp_path: Path, body: str, name: str = "case", duration: float = 40.0) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(HEAD.format(name=name, duration=duration) + body)
    return path


def test_every_required_scenario_is_defined_and_valid() -> None:
    found = {p.stem: load_spec(p) for p in DEFINITIONS.glob("*.toml")}
    assert sorted(found) == sorted(TUNING + CHECK)
    assert {n for n, s in found.items() if s.set == "tuning"} == set(TUNING)
    for name, spec in found.items():
        assert 40 <= spec.duration <= 60, name
        assert spec.calibration_seconds >= 5
        kinds = {a.kind for a in spec.alerts}
        assert (not kinds) == (name in QUIET), f"{name}: {kinds}"
        for alert in spec.alerts:
            assert alert.end - alert.start >= (3 if alert.kind == "loud_audio" else MIN_ALERT)
    assert {a.kind for a in found["camera_covered"].alerts} == {"camera_tamper"}
    assert {a.kind for a in found["talking"].alerts} == {"talking", "loud_audio"}


def test_the_check_set_judges_every_kind_the_tuning_set_has_at_other_times() -> None:
    """Each kind tuned on is also judged on the check set, and no check scenario copies a tuning timeline."""
    specs = [load_spec(p) for p in DEFINITIONS.glob("*.toml")]
    kinds = {name: {a.kind for s in specs if s.set == name for a in s.alerts} for name in ("tuning", "check")}
    assert kinds["tuning"] <= kinds["check"], kinds["tuning"] - kinds["check"]
    tuned = {(a.kind, a.start, a.end) for s in specs if s.set == "tuning" for a in s.alerts}
    checked = [(s.name, a) for s in specs if s.set == "check" for a in s.alerts]
    copied = [(name, a.kind) for name, a in checked if (a.kind, a.start, a.end) in tuned]
    assert not copied
    assert len({s.seed for s in specs}) == len(specs), "every scenario has its own camera noise"


def test_a_plain_definition_loads(tmp_path: Path) -> None:
    body = SEATED.format(start=0.0, end=15.0) + "\n[[segments]]\nstart = 15.0\nend = 25.0\n" + \
        SEATED.format(start=25.0, end=40.0) + alert("absent", 15.0, 25.0)
    spec = load_spec(write(tmp_path, body))
    assert [a.kind for a in spec.alerts] == ["absent"]
    assert implied_alerts(spec) == [("absent", 15.0, 25.0)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (SEATED.format(start=0.0, end=20.0) + SEATED.format(start=15.0, end=40.0),
         r"segments\[1\]: starts at 15.0, which overlaps the previous segment's end 20.0"),
        (SEATED.format(start=0.0, end=20.0) + SEATED.format(start=22.0, end=40.0),
         r"segments\[1\]: starts at 22.0, which leaves a gap after the previous segment's end 20.0"),
        (SEATED.format(start=-1.0, end=40.0), r"segments\.0\.start: Input should be greater than or equal to 0"),
        (SEATED.format(start=0.0, end=30.0), r"segments: end at 30.0, expected them to cover the whole duration"),
        (SEATED.format(start=0.0, end=40.0) + alert("sneezing", 12.0, 22.0),
         r"alerts\.0\.kind: Input should be 'absent', 'left_zone'"),
        (SEATED.format(start=0.0, end=40.0) + alert("absent", 30.0, 45.0),
         r"alerts\[0\] \(absent\): 30.0..45.0 s is outside the video \(0..40.0 s\)"),
        (SEATED.format(start=0.0, end=40.0) + alert("absent", 12.0, 22.0),
         r"alerts: do not match the segments and sounds; missing \[\], not shown \[\('absent', 12.0, 22.0\)\]"),
        (SEATED.format(start=0.0, end=40.0) + '\n[[alerts]]\nkind = "absent"\nstart = 12.0\nend = 22.0\n',
         r"alerts\.0\.allowed_delay: Field required"),
        ('\n[[segments]]\nstart = 0.0\nend = 40.0\ncandidate = "franck_juggling"\n',
         r"segments\.0\.candidate: unknown pose 'franck_juggling'"),
        (SEATED.format(start=0.0, end=40.0).replace('"franck_seated"', '"franck_seated"\nprops = ["banana"]'),
         r"segments\.0\.props: unknown props \['banana'\]"),
        ("\n[[segments]]\nstart = 0.0\nend = 40.0\n",
         r"segments\[0\]: the first 10.0 s must show the enrolled candidate"),
        (SEATED.format(start=0.0, end=40.0) + '\n[[sounds]]\ntype = "speech"\nstart = 12.0\nend = 14.0\ntext = "hi"\n',
         r"alerts: do not match .* missing \[\('talking', 12.0, 14.0\)\]"),
    ],
)
def test_bad_definitions_name_the_field_and_reason(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(SpecError, match=expected) as caught:
        load_spec(path)
    assert str(path) in str(caught.value), "the error names the file"


def test_unknown_photo_and_wrong_name_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SEATED.format(start=0.0, end=40.0))
    path.write_text(path.read_text().replace("franck_02045.jpg", "someone.jpg"))
    with pytest.raises(SpecError, match=r"enrolled: unknown photo 'someone.jpg'; expected one of"):
        load_spec(path)
    other = tmp_path / "other.toml"
    other.write_text(write(tmp_path, SEATED.format(start=0.0, end=40.0)).read_text())
    with pytest.raises(SpecError, match=r"name: 'case' must match the file name 'other'"):
        load_spec(other)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(broken)
    with pytest.raises(SpecError, match="scenario definition not found"):
        load_spec(tmp_path / "missing.toml")


def test_short_alerts_and_alerts_without_a_normal_tail_are_refused(tmp_path: Path) -> None:
    short = SEATED.format(start=0.0, end=15.0) + "\n[[segments]]\nstart = 15.0\nend = 20.0\n" + \
        SEATED.format(start=20.0, end=40.0) + alert("absent", 15.0, 20.0)
    with pytest.raises(SpecError, match=r"alerts\[0\] \(absent\): lasts 5 s, needs >= 8 s"):
        load_spec(write(tmp_path, short))
    late = SEATED.format(start=0.0, end=30.0) + "\n[[segments]]\nstart = 30.0\nend = 40.0\n" + \
        alert("absent", 30.0, 40.0)
    with pytest.raises(SpecError, match=r"needs >= 5 s of normal view after it"):
        load_spec(write(tmp_path, late))


def test_a_covered_or_knocked_camera_implies_only_camera_tamper(tmp_path: Path) -> None:
    body = SEATED.format(start=0.0, end=12.0) + \
        '\n[[segments]]\nstart = 12.0\nend = 24.0\ncamera = "knocked"\nextras = ["obama_standing"]\n' + \
        SEATED.format(start=24.0, end=40.0) + alert("camera_tamper", 12.0, 24.0)
    spec = load_spec(write(tmp_path, body))
    assert implied_alerts(spec) == [("camera_tamper", 12.0, 24.0)]


def test_glances_and_people_passing_by_are_honest_and_imply_nothing(tmp_path: Path) -> None:
    body = SEATED.format(start=0.0, end=12.0) + \
        '\n[[segments]]\nstart = 12.0\nend = 15.0\ncandidate = "franck_looking_down"\n' + \
        SEATED.format(start=15.0, end=20.0) + \
        '\n[[segments]]\nstart = 20.0\nend = 23.0\ncandidate = "franck_seated"\nextras = ["obama_passing"]\n' + \
        SEATED.format(start=23.0, end=40.0)
    assert implied_alerts(load_spec(write(tmp_path, body))) == []


def test_a_long_look_away_is_not_a_glance_and_a_slow_walker_is_refused(tmp_path: Path) -> None:
    look = SEATED.format(start=0.0, end=12.0) + \
        '\n[[segments]]\nstart = 12.0\nend = 21.0\ncandidate = "franck_looking_down"\n' + \
        SEATED.format(start=21.0, end=40.0) + alert("gaze_away", 12.0, 21.0)
    assert implied_alerts(load_spec(write(tmp_path, look))) == [("gaze_away", 12.0, 21.0)]
    slow = SEATED.format(start=0.0, end=12.0) + \
        '\n[[segments]]\nstart = 12.0\nend = 18.0\ncandidate = "franck_seated"\nextras = ["obama_passing"]\n' + \
        SEATED.format(start=18.0, end=40.0)
    with pytest.raises(SpecError, match=r"segments\[1\]: \['obama_passing'\] walk through the view in 6 s"):
        load_spec(write(tmp_path, slow))
