"""The unit's side of the page with the real int8 models on scenario videos played through the frame-source
registry: live placement verdicts until usable, the preview with the overlay drawn in, status from messages
(refused credentials among them)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.calibrate import GUIDANCE
from edge_app.capture.base import build_source
from edge_app.page.config import PageConfig
from edge_app.page.overlay import PASSED, ZONE
from edge_app.page.publisher import CREDENTIALS_REFUSED, PagePublisher
from edge_app.page.state import FileState, PageState
from edge_app.vision.models import VisionModels, load_models
from tests.edge.conftest import Scene, write_scenario
from tests.edge.page.conftest import good_placement_message

FPS = 5.0
PAGE = PageConfig(placement_seconds=1.0, placement_hz=5.0, preview_fps=5.0)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def models(models_dir: Path) -> VisionModels:
    return load_models(models_dir, "int8", threads=1)


def play(publisher: PagePublisher, folder: Path) -> int:
    """Every frame of the scenario through ``on_frame``, as the session loop hands them; the frame count."""
    source = build_source({"type": "scenario", "path": str(folder)})
    count = 0
    with source:
        while (frame := source.read()) is not None:
            publisher.on_frame(frame)
            count += 1
    return count


def drawn(jpeg: bytes, box: list[float], rgb: tuple[int, int, int], tolerance: int = 50) -> float:
    """The share of the box's left edge (inside the frame) drawn in ``rgb`` on the preview."""
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    x = min(max(round(box[0]), 0), width - 1)
    top, bottom = max(round(box[1]), 0), min(round(box[3]), height)
    edge = image[top + 20:bottom - 20, x].astype(int)  # clear of the label
    return float((np.abs(edge - np.array(rgb)).max(axis=1) < tolerance).mean())


def test_an_empty_seat_is_checked_again_and_again_with_its_guidance(models: VisionModels, scene: Scene,
                                                                    tmp_path: Path) -> None:
    folder = write_scenario(tmp_path / "empty", [scene(None, seed) for seed in range(15)], fps=FPS)
    state = PageState()
    publisher = PagePublisher(state, PAGE, models)
    play(publisher, folder)
    found = state.snapshot()["placement"]
    assert found is not None and found["usable"] is False and found["source"] == "live"
    assert found["guidance"][0] == GUIDANCE["candidate"] and not found["checks"]["candidate"]
    assert publisher.checks >= 2 and not publisher.settled  # refreshed while it is not usable
    _, jpeg = state.frame()
    assert jpeg is not None and drawn(jpeg, found["boxes"]["zone"], ZONE) > 0.9  # the seat zone drawn in
    assert drawn(jpeg, found["boxes"]["zone"], PASSED) < 0.1


def test_a_seated_candidate_passes_candidate_and_face_and_is_told_the_rest(models: VisionModels, scene: Scene,
                                                                           tmp_path: Path) -> None:
    folder = write_scenario(tmp_path / "seated", [scene("obama2.jpg", seed) for seed in range(10)], fps=FPS)
    state = PageState()
    publisher = PagePublisher(state, PAGE, models)
    play(publisher, folder)
    found = state.snapshot()["placement"]
    assert found["checks"]["candidate"] and found["checks"]["face"] and not found["checks"]["screen"]
    assert GUIDANCE["screen"] in found["guidance"] and GUIDANCE["candidate"] not in found["guidance"]
    assert found["boxes"]["candidate"] is not None
    _, jpeg = state.frame()
    assert drawn(jpeg, publisher.boxes["candidate"], PASSED) > 0.9  # the candidate's box, passed: green
    assert drawn(jpeg, found["boxes"]["zone"], ZONE) > 0.9


def test_a_usable_session_calibration_ends_the_checks(models: VisionModels, scene: Scene, tmp_path: Path) -> None:
    folder = write_scenario(tmp_path / "empty", [scene(None, seed) for seed in range(10)], fps=FPS)
    state = PageState()
    publisher = PagePublisher(state, PAGE, models)
    publisher.emit(good_placement_message())
    assert publisher.settled and state.snapshot()["placement"]["usable"] is True
    play(publisher, folder)
    assert publisher.checks == 0 and state.snapshot()["placement"]["source"] == "session"
    _, jpeg = state.frame()
    boxes = state.snapshot()["placement"]["boxes"]
    assert drawn(jpeg, boxes["zone"], ZONE) > 0.9 and "candidate" not in boxes  # nobody seen: no candidate box


def test_a_recheck_after_a_usable_verdict_checks_the_placement_again(models: VisionModels, scene: Scene,
                                                                      tmp_path: Path) -> None:
    """The button's long press (the camera was moved): checked again from the next frame, and told."""
    folder = write_scenario(tmp_path / "empty", [scene(None, seed) for seed in range(10)], fps=FPS)
    state = PageState()
    publisher = PagePublisher(state, PAGE, models)
    publisher.emit(good_placement_message())
    assert publisher.settled
    publisher.recheck()
    assert not publisher.settled
    play(publisher, folder)
    found = state.snapshot()["placement"]
    assert publisher.checks >= 1 and found["source"] == "live" and found["usable"] is False  # the seat is empty
    without = PagePublisher(PageState(), PAGE, None)  # no models: nothing can be checked, nothing changes
    without.recheck()
    assert without.settled


def test_messages_set_pairing_camera_and_errors() -> None:
    state = PageState()
    publisher = PagePublisher(state, PAGE, None, queue=lambda: 4, versions={"software": "0.1.0"})
    publisher.emit({"type": "status", "state": "pairing", "t": 1.0, "via": "typed"})
    assert state.snapshot()["status"]["pairing"] == "pairing"
    publisher.emit({"type": "status", "state": "session_started", "t": 2.0, "session": "s-1", "exam": "exam-7",
                    "candidate": "c-1"})
    publisher.emit({"type": "status", "state": "camera_stalled", "t": 3.0, "seconds": 5})
    publisher.emit({"type": "status", "state": "command_refused", "command": "thresholds", "reason": "bad sig"})
    publisher.emit({"type": "alert", "kind": "absent"})  # alerts are not the page's business
    snap = state.snapshot()
    assert (snap["status"]["pairing"], snap["status"]["exam"], snap["status"]["session"]) == ("in_exam", "exam-7",
                                                                                               "s-1")
    assert snap["status"]["camera"] == "stalled" and snap["status"]["versions"] == {"software": "0.1.0"}
    assert [e["text"] for e in snap["errors"]] == ["camera_stalled", "command_refused: bad sig"]


def test_refused_credentials_put_their_sentence_in_the_status_until_accepted_again(tmp_path: Path) -> None:
    state = PageState(mirror=tmp_path / "page")
    publisher = PagePublisher(state, PAGE, None)
    assert state.snapshot()["status"]["credentials_refused"] is None
    publisher.emit({"type": "status", "state": "credentials_refused", "reason": "Not authorized"})
    refused = {"reason": "Not authorized", "message": CREDENTIALS_REFUSED}
    assert state.snapshot()["status"]["credentials_refused"] == refused
    assert "python -m edge_app enrol with a new code" in CREDENTIALS_REFUSED
    assert FileState(tmp_path / "page").snapshot()["status"]["credentials_refused"] == refused  # the page process
    assert [e["text"] for e in state.snapshot()["errors"]] == ["credentials_refused: Not authorized"]
    publisher.emit({"type": "status", "state": "credentials_accepted"})
    assert state.snapshot()["status"]["credentials_refused"] is None
    assert FileState(tmp_path / "page").snapshot()["status"]["credentials_refused"] is None
