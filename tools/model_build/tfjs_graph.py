"""Load TF.js graph models as frozen TensorFlow GraphDefs and edit them.

Runs only in the converter environment (TensorFlow), never on the device.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def _stub_tensorflowjs() -> None:
    """Register bare ``tensorflowjs`` packages so importing the graph converter skips
    ``tensorflowjs.converters.__init__`` (it pulls tf_keras, hub and jax, which we do not need)."""
    if "tensorflowjs" in sys.modules:
        return
    spec = importlib.util.find_spec("tensorflowjs")
    if spec is None or spec.submodule_search_locations is None:
        raise RuntimeError("tensorflowjs is not installed in the converter environment")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, folder in (("tensorflowjs", root), ("tensorflowjs.converters", root / "converters")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(folder)]
            sys.modules[name] = module


def load_graph_def(model_json: Path) -> Any:
    """Return the frozen GraphDef of a TF.js graph model, with fused ops TFLite understands."""
    _stub_tensorflowjs()
    from tfjs_graph_converter import api
    from tfjs_graph_converter.common import CompatMode

    graph = api.load_graph_model(str(model_json), compat_mode=CompatMode.TFLITE)
    return graph.as_graph_def()


def nodes_by_name(graph_def: Any) -> dict[str, Any]:
    return {node.name: node for node in graph_def.node}
