"""NanoDet (COCO-80, 416x416): float reference and full-integer int8, both cut at the raw heads.

Graph edits (applied to both variants):
- the stem max-pool's ``PadV2`` pads with -inf; calibration would then see a +-3.4e38 range and every
  activation would quantize to 0. It now pads with -2.0, below anything the LeakyReLU before it
  outputs on real images, so the max-pool (and the float outputs) are unchanged;
- each stride's head is one 1x1 convolution with 124 channels = 80 class logits + 44 box bins,
  followed by SplitV, sigmoid, reshape and transpose. It is replaced by two convolutions (80 and 44
  channels, same weights) so class logits and box bins get separate quantization scales, and the
  model ends there. Sigmoid, softmax and box decoding run in numpy (``edge_app.vision.detector``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edge_app.vision.detector import COCO_LABELS, INPUT_SHAPE, STRIDES, prepare
from tools.model_build.recipe import Recipe, augmented_views
from tools.model_build.tfjs_graph import nodes_by_name

PAD_VALUE = -2.0
# The source graph's class-score outputs, stride 8, 16, 32 (checked against their shapes).
SOURCE_CLASS_OUTPUTS = ("Identity", "Identity_1", "Identity_2")
OUTPUTS = tuple(f"nanodet/{part}_{stride}" for stride in STRIDES for part in ("cls", "box"))


def _const(graph_def: Any, name: str, value: np.ndarray) -> None:
    import tensorflow as tf

    node = graph_def.node.add(name=name, op="Const")
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))


def _finite_pad(graph_def: Any) -> int:
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    changed = 0
    for node in list(graph_def.node):
        if node.op != "PadV2":
            continue
        value = tf.make_ndarray(nodes[node.input[2]].attr["value"].tensor)
        if np.isfinite(value).all():
            continue
        name = f"{node.name}/finite_value"
        _const(graph_def, name, np.array(PAD_VALUE, dtype=np.float32))
        node.input[2] = name
        changed += 1
    return changed


def _split_heads(graph_def: Any) -> None:
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    classes = len(COCO_LABELS)
    for stride, output in zip(STRIDES, SOURCE_CLASS_OUTPUTS, strict=True):
        node = nodes[output]
        while node.op != "SplitV":  # Identity <- Transpose <- Reshape <- Sigmoid <- SplitV
            node = nodes[node.input[0].split(":")[0]]
        transpose = nodes[node.input[0]]  # NHWC -> NCHW
        add = nodes[transpose.input[0]]
        conv = nodes[add.input[0]]
        assert transpose.op == "Transpose" and add.op in ("Add", "AddV2", "BiasAdd") and conv.op == "Conv2D"
        weights = tf.make_ndarray(nodes[conv.input[1]].attr["value"].tensor)
        bias = tf.make_ndarray(nodes[add.input[1]].attr["value"].tensor)
        assert weights.shape[-1] == bias.shape[0] == classes + 44, (weights.shape, bias.shape)
        for part, channels in (("cls", slice(0, classes)), ("box", slice(classes, None))):
            name = f"nanodet/{part}_{stride}"
            _const(graph_def, f"{name}/weights", np.ascontiguousarray(weights[..., channels]))
            _const(graph_def, f"{name}/bias", np.ascontiguousarray(bias[channels]))
            new_conv = graph_def.node.add()
            new_conv.CopyFrom(conv)
            new_conv.name = f"{name}/conv"
            new_conv.input[1] = f"{name}/weights"
            bias_add = graph_def.node.add(name=name, op="BiasAdd", input=[f"{name}/conv", f"{name}/bias"])
            bias_add.attr["T"].type = tf.float32.as_datatype_enum
            bias_add.attr["data_format"].s = b"NHWC"


def edit(graph_def: Any) -> Any:
    if _finite_pad(graph_def) != 1:
        raise RuntimeError("expected exactly one -inf PadV2 in NanoDet (source model changed?)")
    _split_heads(graph_def)
    return graph_def


def calibration(photos: list[np.ndarray], rng: np.random.Generator, count: int) -> Iterator[list[np.ndarray]]:
    """The device's own pre-processing on whole photos and augmented crops."""
    for view in augmented_views(photos, rng, count):
        yield [prepare(view)[0]]


RECIPE = Recipe(
    name="detector",
    kind="detector",
    source="nanodet",
    input_name="input_1",
    input_shape=INPUT_SHAPE,
    float_outputs=OUTPUTS,
    int8_outputs=OUTPUTS,
    calibration=calibration,
    samples=500,
    edit=edit,
    notes="NanoDet COCO-80; -inf stem pad -> -2.0; heads split into 80 class + 44 box-bin convolutions, "
          "cut before sigmoid/softmax (decoded in numpy by edge_app.vision.detector); 500 calibration views.",
)
