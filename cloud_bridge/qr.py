"""Pairing QR codes for the PC exam client: the module matrix, and a PNG rendered with numpy and OpenCV.

The text is ``edge_app.protocol.commands.qr_payload(code)`` (``INVIGIL:1:<code>``): upper case, digits and
``:`` fit QR alphanumeric mode, so with error correction M the code is a version 1 symbol (21 x 21 modules),
which a camera reads from a screen seen at an angle.
"""

from __future__ import annotations

import cv2
import numpy as np
import qrcode
from qrcode.constants import ERROR_CORRECT_M

MAX_MODULE_PX = 64
MAX_BORDER = 16


def qr_matrix(text: str) -> np.ndarray:
    """The QR code of ``text`` as a square bool array, True for a dark module; no quiet zone (border)."""
    if not text:
        raise ValueError("a QR code needs some text")
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(text)
    code.make(fit=True)
    return np.array(code.get_matrix(), dtype=bool)


def qr_png(text: str, module_px: int = 8, border: int = 4) -> bytes:
    """PNG bytes (8-bit grey) of the QR code of ``text``: ``module_px`` pixels a module, ``border`` light
    modules of quiet zone around it (the standard asks for 4)."""
    if not 1 <= module_px <= MAX_MODULE_PX:
        raise ValueError(f"module_px must be 1..{MAX_MODULE_PX}, not {module_px}")
    if not 0 <= border <= MAX_BORDER:
        raise ValueError(f"border must be 0..{MAX_BORDER}, not {border}")
    modules = np.pad(qr_matrix(text), border, constant_values=False)
    grey = np.where(modules, 0, 255).astype(np.uint8)
    image = np.repeat(np.repeat(grey, module_px, axis=0), module_px, axis=1)
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the QR code as PNG")
    return buffer.tobytes()
