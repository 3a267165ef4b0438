"""Pairing: the QR code on the PC screen of a real rendered scenario, read by the unit; codes typed by staff."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud_bridge.qr import qr_png
from edge_app.capture import ScenarioSourceConfig
from edge_app.pairing import PAIR_FILE, QrPairingScanner, take_pair_code, write_pair_code
from edge_app.protocol import ProtocolError
from edge_app.protocol.commands import qr_payload
from tools.scenarios.player import ScenarioSource

ROOT = Path(__file__).resolve().parents[2]
NORMAL = ROOT / "build" / "scenarios" / "normal"
TYPED = "xk7m-9p2q"  # as staff or a client might spell it
CODE = "XK7M9P2Q"


@pytest.fixture(scope="module")
def normal() -> Path:
    """The rendered `normal` scenario; `make test` renders it first, so its absence is an error, not a skip."""
    if not (NORMAL / "video.avi").is_file():
        pytest.fail(f"{NORMAL}/video.avi is missing: run `make scenarios` (make test does it)")
    return NORMAL


def play(folder: Path, screen: Path, scanner: QrPairingScanner) -> list[tuple[float, str | None]]:
    """Every frame of the scenario with ``screen`` on the PC screen through ``scanner``: (t, code) of each scan."""
    found = []
    with ScenarioSource(ScenarioSourceConfig(path=folder, screen=screen)) as source:
        for frame in iter(source.read, None):
            scans = scanner.scans
            code = scanner.scan(frame.image, frame.t)
            if scanner.scans > scans:
                found.append((frame.t, code))
    return found


def frames_with(folder: Path, screen: Path, times: list[float]) -> list[np.ndarray]:
    """The frames at ``times`` (s) of the scenario with ``screen`` shown."""
    wanted, images = sorted(times), []
    with ScenarioSource(ScenarioSourceConfig(path=folder, screen=screen)) as source:
        for frame in iter(source.read, None):
            if wanted and frame.t >= wanted[0] - 1e-6:
                images.append(frame.image)
                wanted.pop(0)
    return images


def test_reads_the_pairing_code_off_the_pc_screen_through_the_video(normal: Path, tmp_path: Path) -> None:
    screen = tmp_path / "screen.png"
    screen.write_bytes(qr_png(qr_payload(TYPED)))
    scanner = QrPairingScanner(every=4.0)
    found = play(normal, screen, scanner)
    assert [round(t, 1) for t, _ in found] == [4.0 * k for k in range(15)]  # the whole minute, at the cadence
    assert [code for _, code in found] == [CODE] * 15 and scanner.last_text == qr_payload(CODE)
    assert scanner.last_ms is not None and scanner.last_ms > 0


@pytest.mark.parametrize("text", ["INVIGIL:2:XK7M9P2Q", "EXAM:1:XK7M9P2Q", "INVIGIL:1:XK7M9P2O"])
def test_other_qr_codes_are_ignored(normal: Path, tmp_path: Path, text: str) -> None:
    screen = tmp_path / "screen.png"
    screen.write_bytes(qr_png(text))
    scanner = QrPairingScanner(every=0)
    times = [1.0, 30.0, 59.0]
    images = frames_with(normal, screen, times)
    assert len(images) == 3
    for image, t in zip(images, times, strict=True):
        assert scanner.scan(image, t) is None
        assert scanner.last_text == text  # it was read: it is the text that is refused
    assert scanner.scans == 3


def test_no_screen_file_finds_nothing(normal: Path, tmp_path: Path) -> None:
    scanner = QrPairingScanner(every=10.0)
    found = play(normal, tmp_path / "never-written.png", scanner)
    assert [round(t, 1) for t, _ in found] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert [code for _, code in found] == [None] * 6 and scanner.last_text is None


def screen_page(*texts: str, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A grey frame with the QR codes of ``texts`` side by side, straight on (a phone held up to the camera)."""
    frame = np.full((size[1], size[0], 3), 70, np.uint8)
    for i, text in enumerate(texts):
        code = cv2.imdecode(np.frombuffer(qr_png(text, module_px=6), np.uint8), cv2.IMREAD_COLOR)
        assert code is not None
        x = 20 + i * (code.shape[1] + 40)
        frame[60:60 + code.shape[0], x:x + code.shape[1]] = code
    return frame


def test_finds_ours_beside_another_qr_code() -> None:
    scanner = QrPairingScanner(every=0)
    assert scanner.scan(screen_page("HTTPS://EXAMPLE.ORG/EXAM", qr_payload(CODE)), 0.0) == CODE
    assert scanner.scan(screen_page(qr_payload(CODE), "HTTPS://EXAMPLE.ORG/EXAM"), 1.0) == CODE
    assert scanner.scan(screen_page("HTTPS://EXAMPLE.ORG/EXAM"), 2.0) is None
    assert scanner.last_text == "HTTPS://EXAMPLE.ORG/EXAM"


def test_scans_at_most_once_per_period_of_frame_time() -> None:
    page = screen_page(qr_payload(CODE))
    scanner = QrPairingScanner(every=0.5)
    results = [(k / 10, scanner.scan(page, k / 10)) for k in range(21)]
    assert [t for t, code in results if code is not None] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(code == CODE for t, code in results if code is not None) and scanner.scans == 5
    assert scanner.scan(page, 0.2) == CODE and scanner.scans == 6  # time went back: a new stream, scanned at once
    assert scanner.scan(page, 0.3) is None
    with pytest.raises(ValueError, match="every must be >= 0"):
        QrPairingScanner(every=-1)


def test_typed_code_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert take_pair_code(data) is None  # no folder yet
    assert write_pair_code(data, f" {TYPED.upper()} ") == CODE
    assert write_pair_code(data, "ab23 cd45") == "AB23CD45"  # the newest typed code wins
    assert (data / PAIR_FILE).read_text() == "AB23CD45\n"
    assert take_pair_code(data) == "AB23CD45"
    assert not (data / PAIR_FILE).exists() and list(data.iterdir()) == []
    assert take_pair_code(data) is None
    with pytest.raises(ProtocolError, match="bad_code"):
        write_pair_code(data, "AB23CD4O")  # O is not in the alphabet
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01", b"AB23", b"AB23CD45" * 100, b""])
def test_bad_pair_file_is_removed_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 content: bytes) -> None:
    (tmp_path / PAIR_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="edge_app.pairing"):
        assert take_pair_code(tmp_path) is None
    assert list(tmp_path.iterdir()) == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "holds no pairing code" in caplog.records[0].getMessage()
