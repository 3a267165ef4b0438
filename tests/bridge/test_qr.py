"""The pairing QR code the bridge serves to the PC client: module matrix and PNG, read back with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cloud_bridge.qr import qr_matrix, qr_png
from edge_app.protocol.commands import parse_qr, qr_payload

TEXT = qr_payload("XK7M-9P2Q")


def finder(matrix: np.ndarray, row: int, col: int) -> bool:
    """True when a 7x7 finder pattern (dark ring, light ring, dark 3x3 core) starts at (row, col)."""
    block = matrix[row:row + 7, col:col + 7]
    ring = np.ones((7, 7), bool)
    ring[1:6, 1:6] = False
    ring[2:5, 2:5] = True
    return bool(np.array_equal(block, ring))


def test_matrix_is_a_version_1_symbol_without_border() -> None:
    matrix = qr_matrix(TEXT)
    assert matrix.dtype == bool and matrix.shape == (21, 21)  # 18 alphanumeric characters at level M
    assert finder(matrix, 0, 0) and finder(matrix, 0, 14) and finder(matrix, 14, 0)  # no quiet zone around
    assert not finder(matrix, 14, 14)
    assert qr_matrix("x" * 100).shape[0] > 21  # longer text, larger version


def test_png_scales_the_matrix_and_reads_back() -> None:
    png = qr_png(TEXT, module_px=5, border=4)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == ((21 + 8) * 5, (21 + 8) * 5) and image.dtype == np.uint8
    assert set(np.unique(image)) == {0, 255}
    assert (image[:20] == 255).all() and (image[:, -20:] == 255).all()  # the quiet zone is light
    modules = image[20:-20:5, 20:-20:5] == 0
    assert np.array_equal(modules, qr_matrix(TEXT))
    text = cv2.QRCodeDetector().detectAndDecode(image)[0]
    assert text == TEXT and parse_qr(text) == "XK7M9P2Q"


def test_default_png_size() -> None:
    image = cv2.imdecode(np.frombuffer(qr_png(TEXT), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (29 * 8, 29 * 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"module_px": 0}, "module_px must be 1..64"),
    ({"border": -1}, "border must be 0..16"),
    ({"module_px": 65}, "module_px must be 1..64"),
])
def test_png_rejects_bad_sizes(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qr_png(TEXT, **kwargs)


def test_empty_text_is_refused() -> None:
    with pytest.raises(ValueError, match="needs some text"):
        qr_matrix("")
