"""Parity rules of the image self-test comparison."""

from __future__ import annotations

import copy
from typing import Any

from tools.image.compare import SCORE_TOLERANCE, compare, compare_lists, table


def _det(label: str, score: float, box: list[float], threshold: float = 0.35) -> dict[str, Any]:
    return {"label": label, "score": score, "box": box, "threshold": threshold}


def _report(detections: list[dict[str, Any]], machine: str = "x86_64") -> dict[str, Any]:
    return {
        "machine": machine,
        "runtime": "ai_edge_litert",
        "imports": {"numpy": {"pinned": "2.4.6", "installed": "2.4.6", "ok": True}},
        "files": {"detector": {"file": "detector.int8.tflite", "sha256_ok": True}},
        "photos": {"bus.jpg": {"ms": 10.0, "detections": detections, "faces": []}},
    }


PEOPLE = [_det("person", 0.8, [10, 10, 110, 310]), _det("person", 0.6, [200, 20, 290, 300]),
          _det("bus", 0.7, [0, 0, 600, 400])]


def test_identical_reports_are_the_same() -> None:
    result = compare(_report(PEOPLE), _report(copy.deepcopy(PEOPLE), "aarch64"))
    assert result["passed"]
    assert result["photos"][0]["same"]
    assert result["photos"][0]["people"] == "2/2"
    assert "| bus.jpg | 2/2 | 3/3 | 0/0 | yes |" in table(result)


def test_a_lost_person_fails() -> None:
    result = compare(_report(PEOPLE), _report(PEOPLE[:1] + PEOPLE[2:], "aarch64"))
    assert not result["passed"]
    assert result["photos"][0]["lost"] == ["person 0.60 missing on candidate"]


def test_a_moved_box_is_not_a_match() -> None:
    moved = [PEOPLE[0], _det("person", 0.6, [250, 20, 340, 300]), PEOPLE[2]]
    parity = compare_lists("bus.jpg", PEOPLE, moved)
    assert not parity.ok
    assert len(parity.lost) == 2  # missing on one side, extra on the other


def test_a_small_move_across_the_threshold_is_a_flip() -> None:
    ref = [_det("person", 0.36, [10, 10, 110, 310])]
    cand = [_det("person", 0.34, [12, 10, 112, 312])]
    parity = compare_lists("x.jpg", ref, cand)
    assert parity.ok and not parity.same
    assert parity.flips and parity.max_score_diff == 0.02


def test_a_score_beyond_the_tolerance_fails() -> None:
    ref = [_det("person", 0.8, [10, 10, 110, 310])]
    cand = [_det("person", round(0.8 - 2 * SCORE_TOLERANCE, 3), [10, 10, 110, 310])]
    parity = compare_lists("x.jpg", ref, cand)
    assert not parity.ok
    assert "score moved" in parity.lost[0]


def test_a_class_change_is_not_a_match() -> None:
    parity = compare_lists("x.jpg", [_det("cell phone", 0.5, [0, 0, 10, 20])], [_det("remote", 0.5, [0, 0, 10, 20])])
    assert not parity.ok


def test_a_failed_import_fails() -> None:
    candidate = _report(PEOPLE, "aarch64")
    candidate["imports"]["numpy"].update(ok=False, error="numpy: ImportError: boom")
    assert not compare(_report(PEOPLE), candidate)["passed"]
