"""OpenCVSource on real MJPG files, a real HTTP stream on 127.0.0.1, and a camera index that does not exist."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_app.capture import Frame, OpenCVSourceConfig, SourceError, build_source
from edge_app.capture.opencv_src import OpenCVSource, describe_uri
from tests.edge.capture.media import SIZE, frame_number, write_avi


def read_all(source: OpenCVSource) -> list[Frame]:
    frames = []
    for _ in range(1000):
        frame = source.read()
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError("source never ended")


def test_file_frames_in_order_with_media_time(tmp_path: Path) -> None:
    source = build_source({"type": "opencv", "uri": str(write_avi(tmp_path / "v.avi", 12, fps=10))})
    assert isinstance(source, OpenCVSource)
    assert not source.live and not source.realtime
    with source:
        assert source.fps == pytest.approx(10)
        frames = read_all(source)
    assert [f.index for f in frames] == list(range(12))
    assert [f.t for f in frames] == pytest.approx([i / 10 for i in range(12)], abs=1e-6)
    assert [frame_number(f.image) for f in frames] == list(range(12))
    assert all(f.image.shape == (SIZE[1], SIZE[0], 3) and f.image.dtype == np.uint8 for f in frames)


def test_frames_are_rgb(tmp_path: Path) -> None:
    colour = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    colour[:] = (220, 40, 10)  # red in RGB
    with build_source(OpenCVSourceConfig(uri=str(write_avi(tmp_path / "red.avi", [colour] * 2)))) as source:
        frame = source.read()
    assert frame is not None
    r, g, b = frame.image.reshape(-1, 3).mean(axis=0)
    assert r > 180 and b < 50 and g < 80, (r, g, b)


def test_end_of_stream_stays_ended(tmp_path: Path) -> None:
    with build_source({"type": "opencv", "uri": str(write_avi(tmp_path / "v.avi", 3))}) as source:
        assert len(read_all(source)) == 3
        assert source.read() is None


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.avi"
    with pytest.raises(SourceError, match=r"video file .*nope\.avi: not found"):
        build_source({"type": "opencv", "uri": str(missing)}).open()


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(SourceError, match=r"junk\.avi: (OpenCV cannot open it|holds no frame)"):
        source = build_source({"type": "opencv", "uri": str(junk)})
        source.open()
        source.read()


@pytest.mark.parametrize("kept", [0.3, 0.7, 0.9])
def test_truncated_file_gives_whole_frames_or_a_clear_error(tmp_path: Path, kept: float) -> None:
    path = write_avi(tmp_path / "v.avi", 20)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * kept)])
    source = build_source({"type": "opencv", "uri": str(path)})
    try:
        source.open()
        frames = read_all(source)
    except SourceError as exc:
        assert str(path) in str(exc) and ("cannot open" in str(exc) or "no frame" in str(exc))
        return
    finally:
        source.close()
    assert 0 < len(frames) < 20
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [frame_number(f.image) for f in frames] == list(range(len(frames)))


def test_camera_index_that_does_not_exist() -> None:
    source = build_source({"type": "opencv", "uri": 97})
    assert source.live
    with pytest.raises(SourceError, match="camera 97 could not be opened"):
        source.open()


def test_digit_string_is_a_camera_index() -> None:
    assert OpenCVSourceConfig(uri="2").uri == 2
    with pytest.raises(ValueError, match="uri is empty"):
        OpenCVSourceConfig(uri="  ")


def test_stream_names_hide_passwords() -> None:
    assert describe_uri("rtsp://admin:secret@10.0.0.5/live") == "stream rtsp://***@10.0.0.5/live"
    assert describe_uri(0) == "camera 0"
    assert describe_uri("exam.avi") == "video file exam.avi"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving tmp_path."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_network_stream_is_live_and_raises_after_bounded_retries(http_folder: tuple[str, Path]) -> None:
    url, folder = http_folder
    write_avi(folder / "cam.avi", 5)
    source = build_source({"type": "opencv", "uri": f"{url}/cam.avi", "read_retries": 3, "retry_delay": 0})
    assert source.live and source.realtime
    source.open()
    try:
        frames = [source.read() for _ in range(5)]
        assert [f.index for f in frames if f] == list(range(5))
        times = [f.t for f in frames if f]
        assert times == sorted(times)
        with pytest.raises(SourceError, match=r"stream http://127\.0\.0\.1:\d+/cam\.avi gave no frame \(4 tries"):
            source.read()
    finally:
        source.close()


def test_network_stream_that_cannot_be_opened(http_folder: tuple[str, Path]) -> None:
    url, _ = http_folder
    with pytest.raises(SourceError, match=r"stream http://127\.0\.0\.1:\d+/missing\.avi could not be opened"):
        build_source({"type": "opencv", "uri": f"{url}/missing.avi", "timeout": 5}).open()
