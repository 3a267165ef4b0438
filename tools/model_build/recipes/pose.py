"""MoveNet Lightning (single pose, 192x192): float reference and full-integer int8, both cut at the heads.

Graph edits (applied to both variants):
- the source takes an int32 image and casts it to float; the placeholder becomes float32 (same name,
  values 0..255) and the cast is bypassed, so the device feeds float like every other model;
- the model ends at the four head convolutions (heatmap, centre, regression, offset). The in-graph
  tail (sigmoid, centre weighting, argmax, gathers, sqrt) broke full-integer quantization, so it
  runs in numpy (``edge_app.vision.pose``), the same code for both files;
- each head output becomes clamp(gain * x + shift) (``HEAD_CLAMPS`` in edge_app.vision.pose):
  gain and shift are folded into the convolution's weights and bias and the clamp is a ReLU or
  ReLU6 the converter fuses into it. Heatmap and centre logits span about -65..3 but only values
  above about -8 matter (sigmoid 0.0003), regression spans -60..90 cells but a keypoint lies
  within 32 cells of the person centre, offsets span -20..25 but the used ones lie within -1..2
  cells; with the clamps int8 spends its 256 steps on the useful range (output steps: logits 0.28
  -> 0.04, regression 0.68 -> 0.25 cells, offsets 0.20 -> 0.024 cells). The float reference has
  the same clamps, so parity compares like with like and one decoder serves both.

One op stays float (``float_nodes``): the first depthwise convolution. Its per-channel weight norms
reach ~9 on live channels, so it amplifies the 8-bit noise of the stem's ReLU6 output ~9x, and every
later layer inherits that. Full int8 (same clamps, 200 views) put 60 of the 61 confident keypoints
of the gate photos within 5% (mean 1.0%) but moved one wrist 7.6%; with this op float: max 2.5%,
mean 0.8%, and on 108 held-out augmented views 3 (not 7) keypoints beyond 5%. Latency is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edge_app.vision.pose import CLAMPED, HEAD_CLAMPS, INPUT_SHAPE, prepare
from tools.model_build.recipe import Recipe, augmented_views
from tools.model_build.tfjs_graph import nodes_by_name

INPUT = "input"
CAST = "StatefulPartitionedCall/Cast"
HEAD = "StatefulPartitionedCall/{}/BiasAdd/BiasAdd"
HEADS = {"heatmap": "kpt_heatmap_0/conv2d_5", "centre": "center_0/conv2d_4",
         "regress": "kpt_regress_0/conv2d_6", "offset": "kpt_offset_0/conv2d_7"}
OUTPUTS = tuple(HEAD.format(node) + CLAMPED for node in HEADS.values())
# TFLite name of the fused first depthwise conv (+bias +ReLU6) as the quantization debugger sees it.
_DW = ("StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/model/"
       "expanded_conv_depthwise/depthwise/")
FLOAT_NODES = (f"{_DW}Relu6;{_DW}BiasAdd;{_DW}conv2d;Const_721",)


def _bypass_cast(graph_def: Any) -> None:
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    placeholder, cast = nodes[INPUT], nodes[CAST]
    if placeholder.op != "Placeholder" or cast.op != "Cast" or list(cast.input) != [INPUT]:
        raise RuntimeError("MoveNet's input is no longer Placeholder -> Cast (source model changed?)")
    placeholder.attr["dtype"].type = tf.float32.as_datatype_enum
    rewired = 0
    for node in graph_def.node:
        for i, name in enumerate(node.input):
            if name == CAST:
                node.input[i] = INPUT
                rewired += 1
    if rewired == 0:
        raise RuntimeError("nothing consumed MoveNet's input cast")
    graph_def.node.remove(cast)


def _clamp_heads(graph_def: Any) -> None:
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    uses: dict[str, int] = {}
    for node in graph_def.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for head, node_name in HEADS.items():
        gain, shift, op = HEAD_CLAMPS[head]
        bias_add = nodes.get(HEAD.format(node_name))
        if bias_add is None or bias_add.op != "BiasAdd" or nodes[bias_add.input[0]].op != "Conv2D":
            raise RuntimeError(f"MoveNet head {node_name} not found (source model changed?)")
        weights, bias = nodes[nodes[bias_add.input[0]].input[1]], nodes[bias_add.input[1]]
        if uses[weights.name] != 1 or uses[bias.name] != 1:
            raise RuntimeError(f"weights or bias of {node_name} are shared; cannot rescale them in place")
        for const, add in ((weights, 0.0), (bias, shift)):
            value = tf.make_ndarray(const.attr["value"].tensor).astype(np.float32) * np.float32(gain) + np.float32(add)
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        clamp = graph_def.node.add(name=HEAD.format(node_name) + CLAMPED, op=op, input=[bias_add.name])
        clamp.attr["T"].type = tf.float32.as_datatype_enum


def edit(graph_def: Any) -> Any:
    _bypass_cast(graph_def)
    _clamp_heads(graph_def)
    return graph_def


def calibration(photos: list[np.ndarray], rng: np.random.Generator, count: int) -> Iterator[list[np.ndarray]]:
    """The device's own pre-processing (whole frame letterboxed) on photos and augmented crops;
    the crops stand in for the person-box crops the device also feeds."""
    for view in augmented_views(photos, rng, count):
        yield [prepare(view)[0]]


RECIPE = Recipe(
    name="pose",
    kind="pose",
    source="movenet-lightning",
    input_name=INPUT,
    input_shape=INPUT_SHAPE,
    float_outputs=OUTPUTS,
    int8_outputs=OUTPUTS,
    calibration=calibration,
    samples=200,
    edit=edit,
    float_nodes=FLOAT_NODES,
    notes="MoveNet Lightning; int32 input -> float32 0..255 (cast bypassed); cut at the four head "
          "convolutions, each clamped to its useful range (HEAD_CLAMPS), decoded in numpy by "
          "edge_app.vision.pose; first depthwise conv kept float; 200 calibration views.",
)
