"""GraphDef -> TFLite, float reference or full-integer int8 (TensorFlow, converter environment only)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tools.model_build.recipe import Recipe


def to_tflite(recipe: Recipe, graph_def: Any, quant: str, photos: list[np.ndarray], seed: int = 0) -> bytes:
    """Convert ``graph_def`` as ``recipe`` says. ``quant`` is "float" or "int8"."""
    import tensorflow as tf

    outputs = list(recipe.float_outputs if quant == "float" else recipe.int8_outputs)
    with tempfile.TemporaryDirectory() as tmp:
        pb = Path(tmp) / "graph.pb"
        pb.write_bytes(graph_def.SerializeToString())
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(pb), [recipe.input_name], outputs, {recipe.input_name: list(recipe.input_shape)}
        )
    if quant == "float":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return bytes(converter.convert())
    if quant != "int8":
        raise ValueError(f"unknown quantization {quant!r}")

    def representative() -> Any:
        rng = np.random.default_rng(seed)
        for sample in recipe.calibration(photos, rng, recipe.samples):
            yield [np.asarray(x, dtype=np.float32) for x in sample]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if not recipe.float_nodes:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return bytes(converter.convert())
    # Mixed: the few sensitive nodes stay float (selective quantization through the debugger).
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    # fully_quantize: int8 input/output like the full-integer path (the debugger defaults to float I/O).
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=list(recipe.float_nodes), fully_quantize=True
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative, debug_options=options
    )
    return bytes(debugger.get_nondebug_quantized_model())
