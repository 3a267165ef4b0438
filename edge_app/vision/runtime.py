"""One small shim over the two TFLite runtimes the device may have.

``ai-edge-litert`` (the successor of tflite-runtime, numpy 2) is preferred; ``tflite-runtime``
(numpy<2) is supported too. Both expose the same ``Interpreter`` class.
:class:`TFLiteModel` hides quantization: callers always pass and receive float32 arrays.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
RUNTIMES = ("ai_edge_litert", "tflite_runtime")
DELEGATE_NODE = "DELEGATE"  # the op name a delegate's partition of the graph gets in the node listing
_INTERPRETER_MODULE = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
}


class ModelError(RuntimeError):
    """A model file is missing, corrupt or not the model the code expects."""


def available_runtimes() -> list[str]:
    """Names of the installed TFLite runtimes, preferred first."""
    found = []
    for name in RUNTIMES:
        try:
            importlib.import_module(_INTERPRETER_MODULE[name])
        except ImportError:
            continue
        found.append(name)
    return found


def _interpreter_class(runtime: str | None) -> tuple[str, Any]:
    names = [runtime] if runtime else list(RUNTIMES)
    errors = []
    for name in names:
        if name not in _INTERPRETER_MODULE:
            raise ModelError(f"unknown TFLite runtime {name!r}; expected one of {', '.join(RUNTIMES)}")
        try:
            module = importlib.import_module(_INTERPRETER_MODULE[name])
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        return name, module.Interpreter
    raise ModelError("no TFLite runtime is installed (" + "; ".join(errors) + ")")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in (np.dtype(np.int8), np.dtype(np.uint8))


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=detail["name"],
        shape=tuple(int(x) for x in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


@dataclass(frozen=True, eq=False)  # hashed by identity: each model module holds one
class PixelInput:
    """How a model takes an RGB uint8 image: channel order, layout and an elementwise ``normalise``.

    ``normalise`` maps uint8 values (already in the model's channel order) to the floats the model was
    trained on. :meth:`reference` is the plain float path (calibration, tests); :meth:`TFLiteModel.run_pixels`
    gives the model the very same input through one lookup table per channel, straight to the input's
    dtype, without float images in between.
    """

    normalise: Callable[[np.ndarray], np.ndarray]
    bgr: bool = False
    channels_first: bool = False

    def reference(self, pixels: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> float32 model input [1, ...] the slow, obvious way."""
        x = np.asarray(self.normalise(pixels[..., ::-1] if self.bgr else pixels), dtype=np.float32)
        return np.ascontiguousarray((x.transpose(2, 0, 1) if self.channels_first else x)[None])

    def tables(self, spec: TensorSpec) -> np.ndarray:
        """(256, 1, 3) table: RGB pixel value -> the input tensor's value for that channel (dtype of ``spec``)."""
        ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
        values = np.asarray(self.normalise(ramp), dtype=np.float32)  # model channel order
        if self.bgr:
            values = values[..., ::-1]  # back to the pixel's channel order
        return np.ascontiguousarray(_to_tensor(spec, values, check_shape=False))


class ChannelTables:
    """A :meth:`PixelInput.tables` result as byte tables for OpenCV's lookup: ``whole`` (256, 1, 3), a
    contiguous (256,) table per pixel channel in ``planes``, and ``shared`` when the three are the same."""

    def __init__(self, table: np.ndarray) -> None:
        self.whole = table.view(np.uint8) if table.dtype == np.int8 else table
        self.planes = [np.ascontiguousarray(self.whole[:, 0, c]) for c in range(3)]
        same = all(np.array_equal(self.planes[0], plane) for plane in self.planes[1:])
        self.shared = self.planes[0] if same else None


class TFLiteModel:
    """A loaded TFLite model that takes and returns float32 arrays.

    ``expect_inputs``/``expect_outputs`` are the shapes the calling code was written for; a file with
    other shapes is refused with a message naming the file and both shapes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int = 2,
        runtime: str | None = None,
        expect_inputs: Sequence[Sequence[int]] | None = None,
        expect_outputs: Sequence[Sequence[int]] | None = None,
        delegates: bool = True,
    ) -> None:
        """``delegates=False`` runs on the reference kernels only (no XNNPACK): for comparing kernels."""
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist (run `make models` to build it)")
        self.runtime, interpreter_class = _interpreter_class(runtime)
        options: dict[str, Any] = {}
        if not delegates:
            resolver = importlib.import_module(_INTERPRETER_MODULE[self.runtime]).OpResolverType
            options["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.delegate_parts: int | None = None  # graph parts XNNPACK runs, known after the first invoke
        try:
            self._interpreter = interpreter_class(model_path=str(self.path), num_threads=threads, **options)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model file {self.path} is not a loadable TFLite model: {exc}") from exc
        self.inputs = [_spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self._interpreter.get_output_details()]
        self._input_index = [d["index"] for d in self._interpreter.get_input_details()]
        self._output_index = [d["index"] for d in self._interpreter.get_output_details()]
        self._tables: dict[PixelInput, ChannelTables] = {}
        self._check_shapes("input", [s.shape for s in self.inputs], expect_inputs)
        self._check_shapes("output", sorted(s.shape for s in self.outputs), expect_outputs, sort=True)

    def _check_shapes(
        self,
        kind: str,
        found: Sequence[tuple[int, ...]],
        expected: Sequence[Sequence[int]] | None,
        sort: bool = False,
    ) -> None:
        if expected is None:
            return
        want = [tuple(int(x) for x in shape) for shape in expected]
        if sort:
            want = sorted(want)
        if list(found) != want:
            raise ModelError(
                f"model file {self.path} has {kind} shapes {list(found)}, expected {want}: "
                "wrong or outdated model file (run `make models`)"
            )

    @property
    def quantized(self) -> bool:
        return any(s.quantized for s in self.inputs + self.outputs)

    def output_by_shape(self, outputs: list[np.ndarray]) -> dict[tuple[int, ...], np.ndarray]:
        return {tuple(o.shape): o for o in outputs}

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run the model on float inputs; return float32 outputs in the file's output order."""
        if len(inputs) != len(self.inputs):
            raise ModelError(f"{self.path} takes {len(self.inputs)} inputs, got {len(inputs)}")
        for index, spec, value in zip(self._input_index, self.inputs, inputs, strict=True):
            self._interpreter.set_tensor(index, _to_tensor(spec, value))
        return self.dequantize(self._invoke())

    def run_pixels(self, pixels: np.ndarray, how: PixelInput) -> list[np.ndarray]:
        """Run a one-input image model on RGB uint8 ``pixels``: the same input as ``run(how.reference(pixels))``,
        made by per-channel lookup tables straight to the input's dtype (no float image on the way)."""
        return self.dequantize(self.run_pixels_raw(pixels, how))

    def run_pixels_raw(self, pixels: np.ndarray, how: PixelInput) -> list[np.ndarray]:
        """:meth:`run_pixels` with the outputs as the interpreter gives them (int8 for an int8 model), for a
        caller that reads only part of them: :func:`dequantized` turns any part into the same float32 values."""
        spec = self.inputs[0]
        tables = self._tables.get(how)
        if tables is None:
            tables = self._tables[how] = ChannelTables(how.tables(spec))
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ModelError(f"{self.path} takes an RGB uint8 image, got {pixels.dtype} {pixels.shape}")
        h, w = pixels.shape[:2]
        shape = (1, 3, h, w) if how.channels_first else (1, h, w, 3)
        if shape != spec.shape:
            raise ModelError(f"input {spec.name} expects shape {spec.shape}, got {shape}")
        self._fill_input(pixels, tables, how)
        return self._invoke()

    def _fill_input(self, pixels: np.ndarray, tables: ChannelTables, how: PixelInput) -> None:
        """Look ``pixels`` up straight into the input tensor's own buffer, in the model's channel order and
        layout: no set_tensor, and one-channel lookups wherever they do (OpenCV's three-channel lookup took
        3x as long as a one-channel one over the same bytes). The buffer's view dies here, before the invoke
        (the interpreter refuses to run while one is held)."""
        import cv2  # the device has it; importing here keeps this module light for config checks

        target = self._interpreter.tensor(self._input_index[0])()[0]
        if target.dtype == np.int8:
            target = target.view(np.uint8)  # the tables' int8 values are looked up as their bytes
        if how.channels_first:  # a plane per channel, each through its own table into its place
            planes = cv2.split(pixels)
            for channel in range(3):
                source = 2 - channel if how.bgr else channel
                cv2.LUT(planes[source], tables.planes[source], dst=target[channel])
        elif tables.shared is not None:  # one table for all three channels: the image as one plane
            h, w = pixels.shape[:2]
            if how.bgr:
                target[...] = cv2.LUT(pixels.reshape(h, w * 3), tables.shared).reshape(h, w, 3)[..., ::-1]
            else:
                cv2.LUT(pixels.reshape(h, w * 3), tables.shared, dst=target.reshape(h, w * 3))
        else:
            mapped = cv2.LUT(pixels, tables.whole)
            target[...] = mapped[..., ::-1] if how.bgr else mapped

    def _invoke(self) -> list[np.ndarray]:
        """Run the interpreter on the input set; its outputs as stored (copies, in the file's output order)."""
        self._interpreter.invoke()
        if self.delegate_parts is None:
            self._note_delegation()
        return [self._interpreter.get_tensor(index) for index in self._output_index]

    def dequantize(self, raw: Sequence[np.ndarray]) -> list[np.ndarray]:
        """float32 outputs from the interpreter's raw ones (file order)."""
        return [dequantized(spec, values) for spec, values in zip(self.outputs, raw, strict=True)]


    def _note_delegation(self) -> None:
        """Count the graph parts the XNNPACK delegate took (the runtime applies it at the first invoke) and warn
        once when it took none: the reference kernels are tens of times slower, a loop that cannot keep up."""
        try:
            nodes = self._interpreter._get_ops_details()
        except Exception as exc:  # a runtime without the node listing: unknown, and said so once
            log.info("model %s: cannot tell whether XNNPACK runs it (%s)", self.path.name, exc)
            self.delegate_parts = -1
            return
        self.delegate_parts = sum(1 for node in nodes if node.get("op_name") == DELEGATE_NODE)
        if self.delegate_parts == 0:
            log.warning("model %s: the XNNPACK delegate took none of its %d operations; it runs on the reference "
                        "kernels, typically 10-40x slower (delegates turned off, an unsupported operation, or a "
                        "runtime built without XNNPACK)", self.path.name, len(nodes))


def dequantized(spec: TensorSpec, raw: np.ndarray) -> np.ndarray:
    """float32 values of an output tensor ``spec`` (all of it, or any rows of it) as the interpreter stored them."""
    if not spec.quantized:
        return raw.astype(np.float32, copy=False)
    values = raw.astype(np.float32)  # in place from here: one float array
    values -= spec.zero_point
    values *= spec.scale
    return values


def _to_tensor(spec: TensorSpec, value: np.ndarray, check_shape: bool = True) -> np.ndarray:
    if check_shape and tuple(value.shape) != spec.shape:
        raise ModelError(f"input {spec.name} expects shape {spec.shape}, got {tuple(value.shape)}")
    if spec.quantized:
        info = np.iinfo(spec.dtype)
        q = np.round(value / spec.scale + spec.zero_point)
        return np.clip(q, info.min, info.max).astype(spec.dtype)
    return value.astype(spec.dtype, copy=False)


def run_image(model: Any, pixels: np.ndarray, how: PixelInput) -> list[np.ndarray]:
    """``model.run_pixels`` for a TFLite model; the float reference input for any other runnable
    (the converter's float graphs during calibration)."""
    if isinstance(model, TFLiteModel):
        return model.run_pixels(pixels, how)
    return list(model.run(how.reference(pixels)))
