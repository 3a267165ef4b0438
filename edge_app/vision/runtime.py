"""One small shim over the two TFLite runtimes the device may have.

``ai-edge-litert`` (the successor of tflite-runtime, numpy 2) is preferred; ``tflite-runtime``
(numpy<2) is supported too. Both expose the same ``Interpreter`` class.
:class:`TFLiteModel` hides quantization: callers always pass and receive float32 arrays.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RUNTIMES = ("ai_edge_litert", "tflite_runtime")
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
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist (run `make models` to build it)")
        self.runtime, interpreter_class = _interpreter_class(runtime)
        try:
            self._interpreter = interpreter_class(model_path=str(self.path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model file {self.path} is not a loadable TFLite model: {exc}") from exc
        self.inputs = [_spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self._interpreter.get_output_details()]
        self._input_index = [d["index"] for d in self._interpreter.get_input_details()]
        self._output_index = [d["index"] for d in self._interpreter.get_output_details()]
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
        self._interpreter.invoke()
        result = []
        for index, spec in zip(self._output_index, self.outputs, strict=True):
            raw = self._interpreter.get_tensor(index)
            if spec.quantized:
                result.append((raw.astype(np.float32) - spec.zero_point) * spec.scale)
            else:
                result.append(raw.astype(np.float32, copy=False))
        return result


def _to_tensor(spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    if tuple(value.shape) != spec.shape:
        raise ModelError(f"input {spec.name} expects shape {spec.shape}, got {tuple(value.shape)}")
    if spec.quantized:
        info = np.iinfo(spec.dtype)
        q = np.round(value / spec.scale + spec.zero_point)
        return np.clip(q, info.min, info.max).astype(spec.dtype)
    return value.astype(spec.dtype, copy=False)
