"""Face descriptor ``faceres`` (HSE FaceRes, 224x224): float reference and full-integer int8, same cut.

``mobilefacenet`` (the first choice) cannot tell people apart (see ``edge_app.vision.identity``), so
the fallback ``faceres`` is used. Both variants end at the 1024-d ``global_pooling/Mean`` descriptor;
the age and gender heads are dropped, and L2 normalisation runs in numpy. Input: the aligned crop,
BGR minus the VGGFace2 channel means.

Graph edit (both variants, float-exact): the TF.js graph keeps Keras' unfolded batch norms and
clipped ReLUs: conv -> Add, depthwise -> Mul -> Add, then Relu -> Minimum(6) -> Maximum(0). TFLite
ran each as a separate int8 op (requantizing every time: 46 ms and cosine 0.96-0.99 to float). The
Mul is folded into the depthwise kernel, each Add becomes the convolution's BiasAdd and the clip a
Relu6, so every layer is one fused int8 convolution.

Calibration: aligned crops of the faces found in the fixture photos (float detector + float
landmarks), with jittered alignment points, flips and brightness.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from edge_app.vision.identity import EMBED_SIZE, align_face, embedding_input
from tools.model_build.face_calibration import cycle, jitter_colour, photo_faces
from tools.model_build.recipe import Recipe
from tools.model_build.tfjs_graph import nodes_by_name

OUTPUTS = ("global_pooling/Mean",)


def _const_value(nodes: dict[str, Any], name: str) -> np.ndarray | None:
    import tensorflow as tf

    node = nodes.get(name)
    return tf.make_ndarray(node.attr["value"].tensor) if node is not None and node.op == "Const" else None


def fuse_layers(graph_def: Any) -> Any:
    """Fold the per-channel Mul into depthwise kernels, Adds into BiasAdds, Relu+clip into Relu6."""
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    for node in list(graph_def.node):
        if node.op == "Mul" and nodes[node.input[0]].op == "DepthwiseConv2dNative":
            depthwise, scale = nodes[node.input[0]], _const_value(nodes, node.input[1])
            kernel = _const_value(nodes, depthwise.input[1])
            assert scale is not None and kernel is not None and kernel.shape[3] == 1, node.name
            folded = graph_def.node.add(name=f"{depthwise.name}/folded_kernel", op="Const")
            folded.attr["dtype"].type = tf.float32.as_datatype_enum
            value = (kernel * scale[None, None, :, None]).astype(np.float32)
            folded.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            depthwise.input[1] = folded.name
            node.op, node.input[:] = "Identity", [depthwise.name]  # the Mul is now a no-op
            del node.attr["T"]
            node.attr["T"].type = tf.float32.as_datatype_enum
        elif node.op == "Add" and _const_value(nodes, node.input[1]) is not None:
            if _const_value(nodes, node.input[1]).ndim == 1:  # type: ignore[union-attr]
                node.op = "BiasAdd"
        elif node.op == "Maximum" and nodes[node.input[0]].op == "Minimum":
            low, minimum = _const_value(nodes, node.input[1]), nodes[node.input[0]]
            high, relu = _const_value(nodes, minimum.input[1]), nodes[minimum.input[0]]
            assert relu.op == "Relu" and float(low) == 0.0 and float(high) == 6.0, node.name  # type: ignore[arg-type]
            node.op, node.input[:] = "Relu6", [relu.input[0]]
    return graph_def


def calibration(photos: list[np.ndarray], rng: np.random.Generator, count: int) -> Iterator[list[np.ndarray]]:
    faces = photo_faces(photos, with_landmarks=True)
    for index, face in cycle(faces, rng, count):
        assert face.landmarks is not None
        noise = rng.normal(0, 0.015 * face.side, size=(face.landmarks.shape[0], 2))
        moved = face.landmarks.copy()
        moved[:, :2] += noise.astype(np.float32)
        crop = align_face(photos[index], replace(face, landmarks=moved))
        yield [embedding_input(jitter_colour(crop, rng))]


RECIPE = Recipe(
    name="face_embedding",
    kind="face_embedding",
    source="faceres",
    input_name="input_1",
    input_shape=(1, EMBED_SIZE, EMBED_SIZE, 3),
    float_outputs=OUTPUTS,
    int8_outputs=OUTPUTS,
    calibration=calibration,
    samples=200,
    edit=fuse_layers,
    notes="input aligned face crop, BGR minus VGGFace2 means; output 1024-d descriptor, L2-normalised in numpy",
)
