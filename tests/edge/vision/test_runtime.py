"""The TFLite runtime shim: runtime choice, float I/O over int8 models, clear model-file errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.vision import detector, face, identity, pose
from edge_app.vision.runtime import (
    RUNTIMES,
    ModelError,
    PixelInput,
    TensorSpec,
    TFLiteModel,
    _to_tensor,
    available_runtimes,
)

PIXEL_INPUTS = {"detector": detector.PIXELS, "pose": pose.PIXELS, "face_detector": face.DETECTOR_PIXELS,
                "face_landmarks": face.LANDMARK_PIXELS, "face_embedding": identity.PIXELS}


def test_runtimes_are_found_in_preference_order() -> None:
    found = available_runtimes()
    assert found, "no TFLite runtime importable"
    assert found == [name for name in RUNTIMES if name in found]


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nothere\.tflite does not exist"):
        TFLiteModel(tmp_path / "nothere.tflite")


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer" * 64, bytes(range(256)) * 40])
def test_corrupt_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"broken\.tflite is not a loadable TFLite model"):
        TFLiteModel(path)


def test_unknown_runtime_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown TFLite runtime 'tensorflow'"):
        TFLiteModel(path, runtime="tensorflow")


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point", "value", "expected"),
    [
        (np.int8, 0.5, 0, 1.0, 2),
        (np.int8, 0.5, -10, 1.0, -8),
        (np.int8, 1.0, 0, 500.0, 127),  # saturates instead of wrapping
        (np.int8, 1.0, 0, -500.0, -128),
        (np.uint8, 1 / 255, 0, 1.0, 255),
        (np.float32, 0.0, 0, 0.25, 0.25),  # float inputs pass through
    ],
)
def test_inputs_are_quantized_with_the_tensor_parameters(
    dtype: type, scale: float, zero_point: int, value: float, expected: float
) -> None:
    spec = TensorSpec("x", (1,), np.dtype(dtype), scale, zero_point)
    tensor = _to_tensor(spec, np.array([value], dtype=np.float32))
    assert tensor.dtype == np.dtype(dtype)
    assert tensor[0] == expected


def test_wrong_input_shape_is_refused() -> None:
    spec = TensorSpec("img", (1, 4, 4, 3), np.dtype(np.float32), 0.0, 0)
    with pytest.raises(ModelError, match=r"input img expects shape \(1, 4, 4, 3\)"):
        _to_tensor(spec, np.zeros((1, 3, 3, 3), np.float32))


def test_every_installed_runtime_runs_the_int8_detector(models_dir: Path, runtime: str) -> None:
    model = TFLiteModel(models_dir / "detector.int8.tflite", threads=1, runtime=runtime)
    assert model.runtime == runtime
    assert model.quantized
    outputs = model.run(*[np.zeros(s.shape, np.float32) for s in model.inputs])
    assert all(o.dtype == np.float32 for o in outputs)
    assert [o.shape for o in outputs] == [s.shape for s in model.outputs]


def _lookup(how: PixelInput, spec: TensorSpec, pixels: np.ndarray) -> np.ndarray:
    """What ``run_pixels`` hands the interpreter, without one: the tables applied with numpy."""
    table = how.tables(spec)[:, 0, :]  # (256, 3), pixel channel order
    mapped = np.stack([table[pixels[..., c], c] for c in range(3)], axis=-1)
    mapped = mapped[..., ::-1] if how.bgr else mapped
    return (mapped.transpose(2, 0, 1) if how.channels_first else mapped)[None]


@pytest.mark.parametrize("name", sorted(PIXEL_INPUTS))
@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point"),
    [(np.int8, 0.0187, -14), (np.int8, 0.9, 5), (np.uint8, 1 / 255, 0), (np.float32, 0.0, 0)],
)
def test_pixel_tables_give_the_reference_input_exactly(name: str, dtype: type, scale: float, zero_point: int) -> None:
    how = PIXEL_INPUTS[name]
    pixels = np.random.default_rng(7).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    pixels[0, :3] = [[0, 0, 0], [255, 255, 255], [0, 128, 255]]  # both ends and a channel order check
    reference = how.reference(pixels)
    spec = TensorSpec("x", reference.shape, np.dtype(dtype), scale, zero_point)
    looked_up = _lookup(how, spec, pixels)
    assert looked_up.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(looked_up, _to_tensor(spec, reference))


@pytest.mark.parametrize("name", sorted(PIXEL_INPUTS))
@pytest.mark.parametrize("quant", ["int8", "float"])
def test_run_pixels_matches_the_float_path_on_every_model(
    models_dir: Path, runtime: str, quant: str, name: str, photo: Callable[[str], np.ndarray]
) -> None:
    """Each model's layout and channel order: channels first with a table per channel (detector), one
    table shared by the channels (face models, pose), channels last in BGR with a table each (embedding)."""
    how = PIXEL_INPUTS[name]
    model = TFLiteModel(models_dir / f"{name}.{quant}.tflite", threads=1, runtime=runtime)
    shape = model.inputs[0].shape
    height, width = shape[2:4] if how.channels_first else shape[1:3]
    pixels = np.ascontiguousarray(cv2.resize(photo("bus.jpg"), (width, height), interpolation=cv2.INTER_AREA))
    fast = model.run_pixels(pixels, how)
    slow = model.run(how.reference(pixels))
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


def test_run_pixels_refuses_other_images(models_dir: Path) -> None:
    model = TFLiteModel(models_dir / "detector.int8.tflite", threads=1)
    with pytest.raises(ModelError, match="takes an RGB uint8 image"):
        model.run_pixels(np.zeros((416, 416, 3), np.float32), detector.PIXELS)
    with pytest.raises(ModelError, match=r"expects shape \(1, 3, 416, 416\)"):
        model.run_pixels(np.zeros((100, 416, 3), np.uint8), detector.PIXELS)


@pytest.mark.parametrize("delegates", [True, False])
def test_the_first_run_tells_whether_xnnpack_took_the_model(
    models_dir: Path, runtime: str, delegates: bool, caplog: pytest.LogCaptureFixture
) -> None:
    model = TFLiteModel(models_dir / "pose.int8.tflite", threads=1, runtime=runtime, delegates=delegates)
    assert model.delegate_parts is None  # the runtime applies XNNPACK at the first invoke
    with caplog.at_level(logging.WARNING, logger="edge_app.vision.runtime"):
        model.run(*[np.zeros(s.shape, np.float32) for s in model.inputs])
        model.run(*[np.zeros(s.shape, np.float32) for s in model.inputs])
    warnings = [r.getMessage() for r in caplog.records if "XNNPACK" in r.getMessage()]
    if delegates:
        assert model.delegate_parts is not None and model.delegate_parts >= 1
        assert warnings == []
    else:
        assert model.delegate_parts == 0
        assert len(warnings) == 1 and "pose.int8.tflite" in warnings[0] and "reference kernels" in warnings[0]
