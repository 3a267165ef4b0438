"""Float-exact graph edits that equalise activation ranges across channels, for int8 (TensorFlow).

TFLite quantizes activations per tensor, so a tensor whose channels span very different ranges
(BlazeFace: 14 to 3000 in one depthwise output) loses its small channels. Where the graph is
piecewise linear in between, a channel can be scaled by 1/s and the consumer compensated by s
without changing the float outputs (cross-layer equalisation, Nagel et al., "Data-Free Quantization",
2019; here with ranges measured on calibration inputs):

- ``equalize_residual_streams``: residual-stream channels, one factor per stage;
- ``clip_depthwise_outputs``: depthwise -> 1x1 pairs, every channel to [-1, 1] (fused RELU_N1_TO_1);
- ``equalize_relu_outputs``: conv -> ReLU -> conv chains outside the residual streams.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.model_build.tfjs_graph import nodes_by_name


def _const(graph_def: Any, name: str, value: np.ndarray) -> None:
    import tensorflow as tf

    node = graph_def.node.add(name=name, op="Const")
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))


def depthwise_pairs(graph_def: Any) -> list[tuple[Any, Any]]:
    """(depthwise, 1x1 conv) node pairs where the conv is the depthwise output's only consumer."""
    nodes = nodes_by_name(graph_def)
    consumers: dict[str, list[Any]] = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.split(":")[0].lstrip("^"), []).append(node)
    pairs = []
    for node in graph_def.node:
        users = consumers.get(node.name, [])
        if node.op != "DepthwiseConv2dNative" or len(users) != 1 or users[0].op != "Conv2D":
            continue
        conv = users[0]
        if nodes[node.input[1]].op != "Const" or nodes[conv.input[1]].op != "Const":
            continue
        if nodes[conv.input[1]].attr["value"].tensor.tensor_shape.dim[0].size != 1:
            continue
        pairs.append((node, conv))
    return pairs


def activation_ranges(
    graph_def: Any, input_name: str, tensors: list[str], samples: list[np.ndarray]
) -> list[np.ndarray]:
    """Per-channel largest |value| of each tensor over the samples (float graph, TensorFlow)."""
    peaks = [np.zeros(0, np.float32) for _ in tensors]
    for values in _tensor_values(graph_def, input_name, tensors, samples):
        for i, value in enumerate(values):
            peak = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            peaks[i] = peak if peaks[i].size == 0 else np.maximum(peaks[i], peak)
    return peaks


def _tensor_values(graph_def: Any, input_name: str, tensors: list[str], samples: list[np.ndarray]) -> Any:
    """Yield the values of ``tensors`` for each sample, running the float graph in TensorFlow."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        fetches = [graph.get_tensor_by_name(f"{name}:0") for name in tensors]
        feed = graph.get_tensor_by_name(f"{input_name}:0")
        with tf.compat.v1.Session(graph=graph) as session:
            for sample in samples:
                yield session.run(fetches, {feed: sample})


def _consumers(graph_def: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for node in graph_def.node:
        for name in node.input:
            found.setdefault(name.split(":")[0].lstrip("^"), []).append(node)
    return found


def _topological(graph_def: Any) -> list[Any]:
    nodes = nodes_by_name(graph_def)
    done: set[str] = set()
    order: list[Any] = []
    for start in graph_def.node:
        stack = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if node.name in done:
                continue
            if expanded:
                done.add(node.name)
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((nodes[i.split(":")[0].lstrip("^")], False) for i in node.input)
    return order


def residual_streams(graph_def: Any) -> list[str]:
    """Names of the residual-stream tensors: the Relu after each residual AddV2, and the stem Relu feeding one."""
    nodes = nodes_by_name(graph_def)
    consumers = _consumers(graph_def)
    streams = []
    for node in graph_def.node:
        if node.op != "Relu":
            continue
        source = nodes[node.input[0]]
        feeds_add = any(c.op == "AddV2" for c in consumers.get(node.name, []))
        if source.op == "AddV2" or feeds_add:
            streams.append(node.name)
    return streams


def equalize_residual_streams(graph_def: Any, input_name: str, samples: list[np.ndarray], alpha: float = 0.5) -> int:
    """Scale each residual stage's stream channels by 1/D_stage and compensate; returns the stage count.

    A residual stream carries channel c unchanged through skips, so scaling it by a positive
    per-channel factor commutes with every op on the skip path (ReLU, MaxPool, zero Pad, bias-free
    depthwise convolutions); the stem/1x1 convolutions writing into the stream absorb 1/D in their
    output channels and every convolution reading it absorbs D in its input channels. A stage starts
    at each max-pool; where the skip crosses into the next stage a constant Mul converts between the
    two stages' factors. D_c = (range of channel c / median range over the stage) ** alpha, averaged
    (geometrically) over the stage's stream tensors. Float outputs are unchanged.
    """
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    consumers = _consumers(graph_def)
    streams = residual_streams(graph_def)
    order = _topological(graph_def)
    stage: dict[str, int] = {}
    for node in order:
        before = max((stage.get(i.split(":")[0].lstrip("^"), 0) for i in node.input), default=0)
        stage[node.name] = before + (1 if node.op == "MaxPool" else 0)
    ranges = activation_ranges(graph_def, input_name, streams, samples)
    logs: dict[int, list[list[float]]] = {}
    for name, peak in zip(streams, ranges, strict=True):
        per_channel = logs.setdefault(stage[name], [[] for _ in range(peak.size)])
        per_channel.extend([] for _ in range(peak.size - len(per_channel)))
        median = float(np.median(peak[peak > 0])) if (peak > 0).any() else 1.0
        for c in np.flatnonzero(peak > 0):
            per_channel[c].append(float(np.log(peak[c] / median)))
    divisor = {k: np.array([np.exp(alpha * np.mean(v)) if v else 1.0 for v in per], dtype=np.float64)
               for k, per in logs.items()}

    def stream_stage(bias_add: Any) -> int | None:
        for user in consumers.get(bias_add.name, []):
            if user.op == "AddV2" or (user.op == "Relu" and user.name in streams):
                return stage[user.name]
        return None

    scale: dict[str, np.ndarray | None] = {}
    for node in order:
        inputs = [scale.get(i.split(":")[0]) for i in node.input]
        if node.op == "Conv2D":
            weights = tf.make_ndarray(nodes[node.input[1]].attr["value"].tensor).astype(np.float64)
            if inputs[0] is not None:
                weights = weights * inputs[0][None, None, :, None]
            (bias_add,) = consumers[node.name]
            assert bias_add.op == "BiasAdd", node.name
            bias = tf.make_ndarray(nodes[bias_add.input[1]].attr["value"].tensor).astype(np.float64)
            writes = stream_stage(bias_add)
            out = None if writes is None else divisor[writes][: weights.shape[3]]
            if out is not None:
                weights, bias = weights / out[None, None, None, :], bias / out
            _const(graph_def, f"{node.name}/stream_equalized", weights.astype(np.float32))
            _const(graph_def, f"{bias_add.name}/stream_equalized", bias.astype(np.float32))
            node.input[1] = f"{node.name}/stream_equalized"
            bias_add.input[1] = f"{bias_add.name}/stream_equalized"
            scale[node.name] = scale[bias_add.name] = out
        elif node.op == "BiasAdd":
            continue  # set with its convolution
        elif node.op in ("Relu", "MaxPool", "DepthwiseConv2dNative", "Identity"):
            scale[node.name] = inputs[0]
            if node.op == "DepthwiseConv2dNative" and inputs[0] is not None:
                assert all(u.op == "Conv2D" for u in consumers[node.name]), f"{node.name} has a bias"
        elif node.op == "Pad":
            pads = tf.make_ndarray(nodes[node.input[1]].attr["value"].tensor)
            assert not pads[:3].any() and pads[3, 0] == 0, f"{node.name} pads more than trailing channels"
            # padded channels are zeros: give them the next stage's factors (no rescale needed there)
            if inputs[0] is None:
                scale[node.name] = None
            else:
                width = inputs[0].size + int(pads[3, 1])
                scale[node.name] = np.concatenate([inputs[0], divisor[stage[node.name]][inputs[0].size : width]])
        elif node.op == "AddV2":
            skip = 0 if nodes[node.input[1].split(":")[0]].op == "BiasAdd" else 1
            carried, target = inputs[skip], inputs[1 - skip]
            assert carried is not None and target is not None, f"{node.name}: unscaled input"
            if not np.array_equal(carried, target):
                name = f"{node.name}/skip_rescale"
                _const(graph_def, f"{name}/factor", (carried / target).astype(np.float32))
                mul = graph_def.node.add(name=name, op="Mul", input=[node.input[skip], f"{name}/factor"])
                mul.attr["T"].type = tf.float32.as_datatype_enum
                node.input[skip] = name
            scale[node.name] = target
        elif node.op not in ("Const", "Placeholder"):
            assert all(s is None for s in inputs), f"{node.name} ({node.op}) reads an equalised tensor"
    return len(divisor)


def clip_depthwise_outputs(graph_def: Any, input_name: str, samples: list[np.ndarray], quantile: float = 1.0) -> int:
    """Give every depthwise -> 1x1 pair's intermediate tensor the range [-1, 1], per channel.

    Depthwise channel c is divided by its cap a_c (the ``quantile`` of |value| on the samples, 1.0 =
    the largest), followed by min(max(x, -1), 1) (TFLite fuses it into the depthwise convolution as
    RELU_N1_TO_1), and the 1x1 convolution's input channel c is multiplied by a_c. With quantile 1.0 the
    float outputs only change for values beyond anything seen in calibration.
    """
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    pairs = depthwise_pairs(graph_def)
    names = [dw.name for dw, _ in pairs]
    if quantile >= 1.0:
        caps = activation_ranges(graph_def, input_name, names, samples)
    else:
        caps = activation_quantiles(graph_def, input_name, names, samples, quantile)
    for (depthwise, conv), cap in zip(pairs, caps, strict=True):
        cap = np.where(cap > 0, cap, 1.0).astype(np.float64)
        kernel = tf.make_ndarray(nodes[depthwise.input[1]].attr["value"].tensor)
        weights = tf.make_ndarray(nodes[conv.input[1]].attr["value"].tensor)
        assert kernel.shape[3] == 1, f"{depthwise.name}: channel multiplier {kernel.shape[3]}"
        _const(graph_def, f"{depthwise.name}/unit_range", (kernel / cap[None, None, :, None]).astype(np.float32))
        _const(graph_def, f"{conv.name}/unit_range", (weights * cap[None, None, :, None]).astype(np.float32))
        _const(graph_def, f"{depthwise.name}/minus_one", np.array(-1.0, np.float32))
        _const(graph_def, f"{depthwise.name}/one", np.array(1.0, np.float32))
        depthwise.input[1] = f"{depthwise.name}/unit_range"
        low = graph_def.node.add(name=f"{depthwise.name}/floor", op="Maximum",
                                 input=[depthwise.name, f"{depthwise.name}/minus_one"])
        high = graph_def.node.add(name=f"{depthwise.name}/ceiling", op="Minimum",
                                  input=[low.name, f"{depthwise.name}/one"])
        for node in (low, high):
            node.attr["T"].type = tf.float32.as_datatype_enum
        conv.input[0] = high.name
        conv.input[1] = f"{conv.name}/unit_range"
    return len(pairs)


def activation_quantiles(
    graph_def: Any, input_name: str, tensors: list[str], samples: list[np.ndarray], quantile: float
) -> list[np.ndarray]:
    """Per-channel ``quantile`` of |value| of each tensor over all samples and positions."""
    gathered: list[list[np.ndarray]] = [[] for _ in tensors]
    for values in _tensor_values(graph_def, input_name, tensors, samples):
        for i, value in enumerate(values):
            gathered[i].append(np.abs(value).reshape(-1, value.shape[-1]))
    return [np.quantile(np.concatenate(v), quantile, axis=0) for v in gathered]


def equalize_relu_outputs(graph_def: Any, input_name: str, samples: list[np.ndarray], alpha: float = 1.0) -> int:
    """Equalise conv -> BiasAdd -> Relu tensors read only by convolutions (outside residual streams).

    ReLU commutes with positive per-channel scaling: the producing convolution's output channel c is
    divided by E_c = (range_c / median range) ** alpha and the reading convolutions' input channel c
    multiplied by it. Float outputs are unchanged.
    """
    import tensorflow as tf

    nodes = nodes_by_name(graph_def)
    consumers = _consumers(graph_def)
    streams = set(residual_streams(graph_def))
    targets = []
    for node in graph_def.node:
        if node.op != "Relu" or node.name in streams:
            continue
        bias_add = nodes[node.input[0]]
        if bias_add.op != "BiasAdd" or nodes[bias_add.input[0]].op != "Conv2D":
            continue
        readers = consumers.get(node.name, [])
        if readers and all(r.op == "Conv2D" and r.input[0] == node.name for r in readers):
            targets.append((node, bias_add, nodes[bias_add.input[0]], readers))
    ranges = activation_ranges(graph_def, input_name, [t[0].name for t in targets], samples)
    for (_, bias_add, conv, readers), peak in zip(targets, ranges, strict=True):
        median = float(np.median(peak[peak > 0])) if (peak > 0).any() else 1.0
        factor = np.where(peak > 0, (np.maximum(peak, 1e-12) / median) ** alpha, 1.0)
        weights = tf.make_ndarray(nodes[conv.input[1]].attr["value"].tensor)
        bias = tf.make_ndarray(nodes[bias_add.input[1]].attr["value"].tensor)
        _const(graph_def, f"{conv.name}/relu_equalized", (weights / factor[None, None, None, :]).astype(np.float32))
        _const(graph_def, f"{bias_add.name}/relu_equalized", (bias / factor).astype(np.float32))
        conv.input[1], bias_add.input[1] = f"{conv.name}/relu_equalized", f"{bias_add.name}/relu_equalized"
        for reader in readers:
            read = tf.make_ndarray(nodes[reader.input[1]].attr["value"].tensor)
            _const(graph_def, f"{reader.name}/relu_equalized", (read * factor[None, None, :, None]).astype(np.float32))
            reader.input[1] = f"{reader.name}/relu_equalized"
    return len(targets)
