"""ONNX models, read with the onnx package (a protobuf parser; no ONNX Runtime, nothing run).

What an ONNX file can do beyond math: point its tensors at external files (anywhere on disk,
through ``..`` or links), and use operators from custom domains, which need a native library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training", "com.microsoft"}
)
_EXTERNAL = 1
# Bytes per element of TensorProto.DataType values (strings and sub-byte types excluded).
_ELEMENT_BYTES = {
    1: 4,
    2: 1,
    3: 1,
    4: 2,
    5: 2,
    6: 4,
    7: 8,
    9: 1,
    10: 2,
    11: 8,
    12: 4,
    13: 8,
    14: 8,
    15: 16,
    16: 2,
    17: 1,
    18: 1,
    19: 1,
    20: 1,
}


@dataclass(frozen=True)
class Issue:
    kind: str  # external-escape | custom-domain | bad-tensor | huge-tensor
    message: str


def parse(data: bytes) -> Any | None:
    """The ModelProto, or None when the bytes are not an ONNX model (or onnx is missing)."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # noqa: BLE001 - DecodeError and friends: not ONNX
        return None
    if model.ir_version <= 0 or not (model.graph.node or model.graph.initializer):
        return None
    return model


def check(model: Any, model_path: str) -> list[Issue]:
    issues: list[Issue] = []
    folder = os.path.dirname(os.path.abspath(model_path))
    graphs = [model.graph, *list(model.functions)]
    # Functions defined inside the model (the torch exporter's pkg.onnxscript.torch_lib) are
    # ONNX graphs themselves, not native code: their domains are the model's own.
    local = {function.domain for function in model.functions}
    for graph in graphs:
        for node in graph.node if hasattr(graph, "node") else []:
            if node.domain not in STANDARD_DOMAINS and node.domain not in local:
                issues.append(
                    Issue(
                        "custom-domain",
                        f"node {node.name or node.op_type!r} uses operator "
                        f"{node.domain}.{node.op_type}, which needs a custom native library",
                    )
                )
    for tensor in model.graph.initializer:
        issues.extend(_tensor_issues(tensor, folder))
    return issues


def _tensor_issues(tensor: Any, folder: str) -> list[Issue]:
    issues: list[Issue] = []
    count = 1
    for dim in tensor.dims:
        count *= max(dim, 0)
    if count > 1 << 40:
        issues.append(Issue("huge-tensor", f"tensor {tensor.name!r} claims {count} elements"))
    if tensor.data_location == _EXTERNAL:
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        resolved = os.path.realpath(os.path.join(folder, location))
        if (
            not location
            or os.path.isabs(location)
            or ".." in location.replace("\\\\", "/").split("/")
            or not (resolved == folder or resolved.startswith(folder + os.sep))
        ):
            issues.append(
                Issue(
                    "external-escape",
                    f"tensor {tensor.name!r} reads its data from "
                    f"{location!r}, outside the model's folder",
                )
            )
    elif tensor.raw_data and tensor.data_type in _ELEMENT_BYTES:
        expected = count * _ELEMENT_BYTES[tensor.data_type]
        if len(tensor.raw_data) != expected:
            issues.append(
                Issue(
                    "bad-tensor",
                    f"tensor {tensor.name!r} has {len(tensor.raw_data)} bytes "
                    f"for {count} elements (needs {expected})",
                )
            )
    return issues
