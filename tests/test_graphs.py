"""ONNX models (built with the onnx package) and TensorFlow graphs (protobuf written by hand,
since TensorFlow is not installed here — the scanner must not need it either)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlward import Verdict, scan


def _onnx(
    path: Path, *, location: str | None = None, domain: str = "", bad_raw: bool = False
) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])
    weight = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "W")
    if location is not None:
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", location
    if bad_raw:
        weight.raw_data = b"\x00" * 5
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"])]
    if domain:
        nodes.append(helper.make_node("Op", ["Y"], ["Z"], domain=domain))
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], [weight])), str(path))
    return path


def test_benign_onnx_is_clean(tmp_path: Path) -> None:
    art = scan([_onnx(tmp_path / "m.onnx")]).artifacts[0]
    assert art.formats == ("onnx",) and art.verdict is Verdict.CLEAN
    (tmp_path / "weights.bin").write_bytes(np.ones((2, 2), dtype=np.float32).tobytes())
    inside = scan([_onnx(tmp_path / "ext.onnx", location="weights.bin")]).artifacts[0]
    assert inside.verdict is Verdict.CLEAN


@pytest.mark.parametrize("location", ["/etc/passwd", "../../outside.bin", "link.bin"])
def test_external_data_escaping_the_folder_is_malicious(tmp_path: Path, location: str) -> None:
    os.symlink("/etc/hostname", tmp_path / "link.bin")
    art = scan([_onnx(tmp_path / "m.onnx", location=location)]).artifacts[0]
    assert art.verdict is Verdict.MALICIOUS
    assert any(f.rule_id == "MW961" for f in art.findings)


def test_custom_domains_and_bad_tensors(tmp_path: Path) -> None:
    custom = scan([_onnx(tmp_path / "c.onnx", domain="my.ops")]).artifacts[0]
    assert custom.verdict is Verdict.SUSPICIOUS
    assert any(f.rule_id == "MW962" for f in custom.findings)
    bad = scan([_onnx(tmp_path / "b.onnx", bad_raw=True)]).artifacts[0]
    assert bad.verdict is Verdict.SUSPICIOUS


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _graph(ops: list[str], function_ops: list[str] = ()) -> bytes:  # type: ignore[assignment]
    nodes = b"".join(
        _field(1, _field(1, f"n{i}".encode()) + _field(2, op.encode())) for i, op in enumerate(ops)
    )
    if function_ops:
        function = b"".join(
            _field(3, _field(1, b"f") + _field(2, op.encode())) for op in function_ops
        )
        nodes += _field(2, _field(1, function))
    return nodes


def _saved_model(graph: bytes) -> bytes:
    return b"\x08\x01" + _field(2, _field(2, graph))


CHECKPOINT_OPS = [
    "Placeholder",
    "MatMul",
    "Relu",
    "SaveV2",
    "RestoreV2",
    "ShardedFilename",
    "StringJoin",
]


def test_benign_saved_model_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "saved_model.pb"
    path.write_bytes(_saved_model(_graph(CHECKPOINT_OPS)))
    art = scan([path]).artifacts[0]
    assert art.formats == ("tf-saved-model",) and art.verdict is Verdict.CLEAN
    ops = next(f for f in art.findings if f.rule_id == "MW967").evidence["ops"]
    assert "MatMul" in ops


@pytest.mark.parametrize(
    ("ops", "function_ops", "rule"),
    [
        (["MatMul", "PyFunc"], [], "MW965"),
        (["MatMul"], ["EagerPyFunc"], "MW965"),
        (["ReadFile", "MatMul"], [], "MW966"),
        (["MatchingFiles"], [], "MW966"),
    ],
)
def test_dangerous_ops_are_flagged(
    tmp_path: Path, ops: list[str], function_ops: list[str], rule: str
) -> None:
    path = tmp_path / "saved_model.pb"
    path.write_bytes(_saved_model(_graph(ops, function_ops)))
    art = scan([path]).artifacts[0]
    assert art.verdict is Verdict.MALICIOUS
    assert any(f.rule_id == rule for f in art.findings)


def test_frozen_graph_def(tmp_path: Path) -> None:
    path = tmp_path / "frozen.pb"
    path.write_bytes(_graph(["Const", "WriteFile"]))
    art = scan([path]).artifacts[0]
    assert art.formats == ("tf-graph",) and art.verdict is Verdict.MALICIOUS


def test_unknown_ops_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "saved_model.pb"
    path.write_bytes(_saved_model(_graph(["MatMul", "MyCustomKernel"])))
    art = scan([path]).artifacts[0]
    assert art.verdict is Verdict.CLEAN
    unknown = next(f for f in art.findings if f.rule_id == "MW968")
    assert unknown.evidence["ops"] == ["MyCustomKernel"]


def test_models_from_real_exporters_and_local_functions_are_clean(tmp_path: Path) -> None:
    import warnings

    import onnx
    import torch
    from onnx import TensorProto, helper

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        torch.onnx.export(model, (torch.randn(1, 4),), str(tmp_path / "t.onnx"), dynamo=False)
    assert scan([tmp_path / "t.onnx"]).artifacts[0].verdict is Verdict.CLEAN
    double = helper.make_function(
        "my.local",
        "Double",
        ["x"],
        ["y"],
        [helper.make_node("Add", ["x", "x"], ["y"])],
        [helper.make_opsetid("", 18)],
    )
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])
    graph = helper.make_graph(
        [helper.make_node("Double", ["X"], ["Y"], domain="my.local")], "g", [x], [y]
    )
    local = helper.make_model(
        graph,
        functions=[double],
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("my.local", 1)],
    )
    onnx.save(local, str(tmp_path / "local.onnx"))
    assert scan([tmp_path / "local.onnx"]).artifacts[0].verdict is Verdict.CLEAN


def test_saved_model_folder_parts_are_recognised(tmp_path: Path) -> None:
    """fingerprint.pb, the checkpoint index (SSTable magic) and its data shard: no code, clean."""
    folder = tmp_path / "model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(_saved_model(_graph(CHECKPOINT_OPS)))
    fingerprint = b"".join(bytes([n << 3]) + _varint(2**40 + n) for n in range(1, 6))
    (folder / "fingerprint.pb").write_bytes(
        fingerprint + _field(6, b"\x08\x01") + _field(7, b"\x08\x02")
    )
    (folder / "variables" / "variables.index").write_bytes(
        b"\x00" * 40 + bytes.fromhex("57fb808b247547db")
    )
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(
        np.ones(64, dtype=np.float32).tobytes()
    )
    report = scan([folder])
    assert {a.verdict for a in report.artifacts} == {Verdict.CLEAN}, [
        (a.path, a.formats) for a in report.artifacts
    ]
