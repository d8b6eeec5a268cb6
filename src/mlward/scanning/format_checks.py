"""Checks for model formats that are read whole and hold no nested artifacts: Keras configs
(v3 and HDF5), GGUF, ONNX and TensorFlow graphs, safetensors headers, Hugging Face configs."""

from __future__ import annotations

import io
import struct

from mlward.formats import gguf, keras, onnx, protobuf, safetensors, tensorflow
from mlward.results import Finding, Location, Severity
from mlward.scanning.collect import Collected, codec_missing, incomplete
from mlward.scanning.policy import Policy, Trust
from mlward.storage.blobs import Blob

MAX_GRAPH_BYTES = 512 << 20


def check_keras_config(
    text: bytes, path: str, member: str | None, out: Collected, policy: Policy
) -> None:
    try:
        config = keras.parse_config(text)
    except (ValueError, UnicodeDecodeError) as exc:
        out.findings.append(
            incomplete(
                path,
                member,
                "MW980",
                "Unreadable Keras config",
                f"the model config is not valid JSON: {exc}",
                "If this file should load, it is damaged; get a fresh copy.",
            )
        )
        return
    for obj in keras.objects(config):
        if obj.bytecode is not None:
            out.findings.append(
                Finding(
                    "MW981",
                    "Keras Lambda with Python bytecode",
                    Severity.HIGH,
                    f"The layer at {obj.path} carries marshaled Python bytecode "
                    f"({len(obj.bytecode)} bytes), which Keras runs when it rebuilds the "
                    "model with safe_mode=False (and legacy loaders always do).",
                    Location(path, member),
                    evidence={"layer": obj.path, "names": keras.strings_in(obj.bytecode)},
                    fix="Do not load this model with safe_mode=False; re-create the layer "
                    "in code you control.",
                )
            )
            continue
        named = keras.custom_name(obj)
        if named is None:
            continue
        decision = policy.decide(*named)
        if decision.trust is Trust.TRUSTED or (
            keras.names_keras_builtin(obj) and decision.trust is not Trust.DANGEROUS
        ):
            continue
        full = f"{named[0]}.{named[1]}"
        dangerous = decision.trust is Trust.DANGEROUS
        out.imports.setdefault(full, None)
        out.findings.append(
            Finding(
                "MW982" if dangerous else "MW983",
                "Keras config names a dangerous callable"
                if dangerous
                else "Keras config names code outside Keras",
                Severity.CRITICAL if dangerous else Severity.MEDIUM,
                f"{obj.path} asks Keras to import {full} while rebuilding the model"
                + (f": {decision.reason}" if dangerous else "; that code runs at load time."),
                Location(path, member),
                evidence={"global": full, "trusted": False, "layer": obj.path},
                fix=f"--allow {full}" if not dangerous else "Do not load this model.",
            )
        )


def scan_hdf5(
    blob: Blob, path: str, member: str | None, out: Collected, policy: Policy
) -> list[str]:
    try:
        import h5py  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        out.findings.append(
            codec_missing(path, member, "HDF5 file", "pip install 'mlward[keras]' (h5py)")
        )
        return ["hdf5"]
    try:
        with h5py.File(io.BytesIO(blob.read(0, blob.size)), "r") as handle:
            raw = handle.attrs.get("model_config")
    except Exception as exc:  # noqa: BLE001 - the HDF5 library raises many kinds
        out.findings.append(
            incomplete(
                path,
                member,
                "MW984",
                "Unreadable HDF5",
                f"HDF5 file cannot be read: {exc}",
                "If this file should load, it is damaged; get a fresh copy.",
            )
        )
        return ["hdf5"]
    if raw is None:
        return ["hdf5"]  # weights or data only: nothing here names code
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    check_keras_config(text.encode("utf-8"), path, member, out, policy)
    return ["keras-h5"]


def scan_gguf(blob: Blob, path: str, member: str | None, out: Collected) -> list[str]:
    try:
        info = gguf.read(blob)
    except (gguf.GgufError, struct.error) as exc:
        out.findings.append(_gguf_header_finding(path, member, str(exc)))
        return ["gguf"]
    for problem in info.problems:
        out.findings.append(_gguf_header_finding(path, member, problem))
    for key, template in info.templates.items():
        risks = gguf.template_risks(template)
        if risks:
            out.findings.append(
                Finding(
                    "MW991",
                    "Chat template escapes the Jinja sandbox",
                    Severity.HIGH,
                    f"The {key} template {'; '.join(risks[:6])}. Runtimes render this "
                    "template on every prompt; these constructs reach Python objects beyond "
                    "the chat data (the published llama.cpp / llama-cpp-python template "
                    "injection).",
                    Location(path, member),
                    evidence={"key": key, "risks": risks, "template": template[:400]},
                    fix="Do not serve this model; replace its chat template with one you reviewed.",
                )
            )
    return ["gguf"]


def check_remote_code(document: object, path: str, member: str | None, out: Collected) -> None:
    """Hugging Face configs whose auto_map makes trust_remote_code import the repo's code."""
    if not isinstance(document, dict):
        return
    auto_map = document.get("auto_map")
    if not isinstance(auto_map, dict) or not auto_map:
        return
    targets = sorted(
        {
            v
            for value in auto_map.values()
            for v in (value if isinstance(value, list) else [value])
            if isinstance(v, str)
        }
    )
    modules = sorted({t.split("--")[-1].rsplit(".", 1)[0] + ".py" for t in targets if "." in t})
    out.findings.append(
        Finding(
            "MW995",
            "Code that trust_remote_code runs",
            Severity.MEDIUM,
            f"auto_map points transformers at {', '.join(targets[:6])}: loading with "
            f"trust_remote_code=True imports and runs {', '.join(modules[:6]) or 'that code'} "
            "from the repository (or the repository it names). Review that code first.",
            Location(path, member),
            evidence={"auto_map": targets, "python_files": modules},
            fix="Load without trust_remote_code, or review the named files and pin the "
            "revision you reviewed.",
        )
    )


def scan_graph(blob: Blob, path: str, member: str | None, out: Collected) -> list[str] | None:
    """ONNX models and TensorFlow graphs: protobufs with no magic, told apart by parsing."""
    if tensorflow.is_checkpoint_index(blob.read(max(0, blob.size - 8), 8)):
        return ["tf-checkpoint-index"]  # tensor names, shapes and offsets; no ops, no code
    if member is None and tensorflow.is_checkpoint_shard(path):
        return ["tf-checkpoint-data"]
    if blob.size > MAX_GRAPH_BYTES:
        return None
    data = blob.read(0, blob.size)
    model = onnx.parse(data)
    if model is not None:
        severity = {
            "external-escape": Severity.HIGH,
            "custom-domain": Severity.MEDIUM,
            "huge-tensor": Severity.MEDIUM,
        }
        for issue in onnx.check(model, path):
            if issue.kind == "bad-tensor":
                # Runtimes that trust dims over the byte count read past the buffer.
                out.findings.append(
                    Finding(
                        "MW963",
                        "Inconsistent ONNX tensor",
                        Severity.MEDIUM,
                        issue.message + ".",
                        Location(path, member),
                        evidence={"issue": issue.kind},
                    )
                )
                continue
            out.findings.append(
                Finding(
                    {"external-escape": "MW961", "custom-domain": "MW962"}.get(issue.kind, "MW964"),
                    {
                        "external-escape": "ONNX external data outside the model folder",
                        "custom-domain": "ONNX custom operator domain",
                    }.get(issue.kind, "Oversize ONNX tensor"),
                    severity[issue.kind],
                    issue.message + ".",
                    Location(path, member),
                    evidence={"issue": issue.kind},
                )
            )
        return ["onnx"]
    if tensorflow.is_fingerprint(data):
        return ["tf-fingerprint"]
    if tensorflow.looks_like_saved_model(data):
        try:
            kind, graph = "tf-saved-model", tensorflow.read_saved_model(data)
        except protobuf.ProtobufError as exc:
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW969",
                    "Unreadable TensorFlow graph",
                    f"the SavedModel protobuf is damaged: {exc}",
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
            return ["tf-saved-model"]
    elif data[:1] == b"\x0a":
        try:
            kind, graph = "tf-graph", tensorflow.read_graph_def(data)
        except protobuf.ProtobufError:
            return None
    else:
        return None
    if not graph.nodes:
        return None
    python_ops = sorted(set(graph.ops) & tensorflow.PYTHON_OPS)
    file_ops = sorted(set(graph.ops) & tensorflow.FILE_OPS)
    if python_ops:
        out.findings.append(
            Finding(
                "MW965",
                "TensorFlow graph calls Python",
                Severity.HIGH,
                f"The graph uses {', '.join(python_ops)}, which run Python functions when "
                "the graph runs.",
                Location(path, member),
                evidence={"ops": python_ops},
            )
        )
    if file_ops:
        out.findings.append(
            Finding(
                "MW966",
                "TensorFlow graph touches files",
                Severity.HIGH,
                f"The graph uses {', '.join(file_ops)}, which read, list or write files "
                "when the graph runs; a model has no need to.",
                Location(path, member),
                evidence={"ops": file_ops},
            )
        )
    unknown = sorted(
        set(graph.ops) - tensorflow.KNOWN_OPS - tensorflow.PYTHON_OPS - tensorflow.FILE_OPS
    )
    if unknown:
        out.findings.append(
            Finding(
                "MW968",
                "Unreviewed TensorFlow ops",
                Severity.INFO,
                f"The graph uses ops outside mlward's reviewed list: {', '.join(unknown[:20])}"
                + (" ..." if len(unknown) > 20 else "")
                + ". Most are ordinary; custom ops need a native library to run.",
                Location(path, member),
                evidence={"ops": unknown},
            )
        )
    out.findings.append(
        Finding(
            "MW967",
            "TensorFlow ops",
            Severity.INFO,
            f"{graph.nodes} nodes using {len(graph.ops)} distinct ops.",
            Location(path, member),
            evidence={"ops": sorted(graph.ops)},
        )
    )
    return [kind]


def scan_safetensors(blob: Blob, path: str, member: str | None, out: Collected) -> list[str]:
    _, problems = safetensors.check(blob)
    for problem in problems:
        if problem.hiding:
            out.findings.append(
                Finding(
                    "MW971",
                    "safetensors layout hides data",
                    Severity.MEDIUM,
                    f"{problem.message}. Writers lay tensors out back to back; readers that "
                    "trust offsets differently see different tensors, and hidden bytes can "
                    "carry anything.",
                    Location(path, member),
                    evidence={"problem": problem.message},
                )
            )
        else:
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW970",
                    "Damaged safetensors header",
                    problem.message,
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
    return ["safetensors"]


def _gguf_header_finding(path: str, member: str | None, problem: str) -> Finding:
    # GGUF is parsed by C and C++ loaders: a header that lies about counts, lengths or offsets
    # is how their memory-corruption bugs are reached, so it is a finding, not mere damage.
    return Finding(
        "MW990",
        "Malformed GGUF header",
        Severity.MEDIUM,
        f"{problem}. llama.cpp-style loaders trust these fields; crafted values reach their "
        "memory-safety bugs.",
        Location(path, member),
        evidence={"problem": problem},
        fix="Do not load this file; get the model from a source you trust.",
    )
