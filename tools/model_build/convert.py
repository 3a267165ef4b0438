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
        denylisted_nodes=float_node_names(recipe, graph_def, photos), fully_quantize=True
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative, debug_options=options
    )
    return bytes(debugger.get_nondebug_quantized_model())


def float_node_names(recipe: Recipe, graph_def: Any, photos: list[np.ndarray]) -> list[str]:
    """``recipe.float_nodes`` as TFLite op-output tensor names (what the debugger's denylist matches).

    Entries starting with ``re:`` are regular expressions searched in the float model's op outputs,
    whose names are fused ("a;b;c") and so awkward to spell out.
    """
    import re

    import tensorflow as tf

    names = [n for n in recipe.float_nodes if not n.startswith("re:")]
    patterns = [re.compile(n[3:]) for n in recipe.float_nodes if n.startswith("re:")]
    if patterns:
        interpreter = tf.lite.Interpreter(model_content=to_tflite(recipe, graph_def, "float", photos))
        outputs = {interpreter._get_tensor_details(t, 0)["name"] for op in interpreter._get_ops_details()
                   for t in op["outputs"]}
        matched = sorted(n for n in outputs if any(p.search(n) for p in patterns))
        if not matched:
            raise ValueError(f"{recipe.name}: float_nodes patterns match no op output")
        names += matched
    return names
