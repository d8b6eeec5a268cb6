"""Conversion to formats that cannot carry code: PyTorch to safetensors, scikit-learn to skops.

The source is loaded only through the safe loader (so only a clean, allowlisted file is ever
read), written in the target format, read back, compared with what was loaded, and scanned.
"""

from __future__ import annotations

import math
import os
import pickle
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mlward.errors import ConversionError
from mlward.options import Limits, ScanOptions
from mlward.results import Verdict
from mlward.scanning.engine import Scanner
from mlward.scanning.safe_load import check


@dataclass(frozen=True)
class ConversionResult:
    source: str
    target: str
    target_format: str
    items: int
    dropped: tuple[str, ...]
    target_verdict: Verdict


def convert(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    allow: Iterable[str] = (),
    drop_non_tensors: bool = False,
    limits: Limits | None = None,
) -> ConversionResult:
    source_name, target_name = os.fspath(source), os.fspath(target)
    options = ScanOptions(allow=tuple(allow), limits=limits or Limits())
    # One read and one scan serve the format decision and the load.
    checked = check(source_name, options.allow, options.limits)
    scanned = checked.result
    formats = scanned.formats
    if formats[:1] == ("npy",) or formats[:1] == ("npz",):
        if "pickle" in formats or any("pickle" in m.formats for m in scanned.members):
            raise ConversionError(
                f"{source_name} holds a NumPy object array: arbitrary Python objects that no "
                "code-free format can represent",
                fix="Rebuild the array with a numeric or string dtype, then save it with "
                "numpy.save(allow_pickle=False) or safetensors.",
            )
        raise ConversionError(
            f"{source_name} is a plain NumPy array, which already carries no code",
            fix="Nothing to convert; load it with numpy.load(allow_pickle=False).",
        )
    value = checked.load(map_location="cpu")
    if formats[:1] in {("pytorch-zip",), ("pytorch-legacy",), ("pytorch-legacy-tar",)}:
        return _to_safetensors(value, source_name, target_name, drop_non_tensors, options)
    if _is_sklearn(value):
        return _to_skops(value, source_name, target_name, options)
    raise ConversionError(
        f"{source_name} ({', '.join(formats)}) holds {type(value).__module__}."
        f"{type(value).__qualname__}, which has no code-free target here",
        fix="mlward converts PyTorch checkpoints to safetensors and scikit-learn models to skops.",
    )


# -- PyTorch -> safetensors ----------------------------------------------------------------------
def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if hasattr(value, "state_dict") and callable(value.state_dict) and hasattr(value, "modules"):
        value = value.state_dict()  # a whole nn.Module: its parameters and buffers
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix or "value", value


def _safetensors_dtypes() -> frozenset[Any]:
    import torch

    names = (
        "float64",
        "float32",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "float8_e4m3fn",
        "float8_e5m2",
        "complex64",
        "uint16",
        "uint32",
        "uint64",
    )
    return frozenset(getattr(torch, name) for name in names if hasattr(torch, name))


class _LazyDtypes:
    def __contains__(self, dtype: object) -> bool:
        global _DTYPES  # noqa: PLW0603 - computed once, on first use (torch is optional)
        if _DTYPES is None:
            _DTYPES = _safetensors_dtypes()
        return dtype in _DTYPES


_DTYPES: frozenset[Any] | None = None
_SAFETENSORS_DTYPES = _LazyDtypes()


def _to_safetensors(
    value: Any, source: str, target: str, drop_non_tensors: bool, options: ScanOptions
) -> ConversionResult:
    try:
        import torch
        from safetensors.torch import load_file, save_file
    except ImportError as exc:
        raise ConversionError(
            "converting to safetensors needs torch and safetensors",
            fix="pip install 'mlward[torch,convert]'",
        ) from exc
    tensors: dict[str, Any] = {}
    dropped: list[str] = []
    for name, leaf in _leaves(value, ""):
        if (
            isinstance(leaf, torch.Tensor)
            and leaf.layout == torch.strided
            and not leaf.is_quantized
            and leaf.dtype in _SAFETENSORS_DTYPES
        ):
            tensors[name] = leaf
        else:
            dropped.append(name)
    if dropped and not drop_non_tensors:
        shown = ", ".join(dropped[:12]) + (", ..." if len(dropped) > 12 else "")
        raise ConversionError(
            f"{source} holds {len(dropped)} values that are not dense tensors of a safetensors "
            f"dtype ({shown}); safetensors stores only those",
            fix="Pass --drop-non-tensors (drop_non_tensors=True) to convert the tensors alone.",
        )
    if not tensors:
        raise ConversionError(f"{source} holds no tensors", fix="Nothing to convert.")
    # safetensors refuses tensors that share memory: give each its own contiguous copy.
    seen: set[tuple[int, int]] = set()
    for name, tensor in tensors.items():
        span = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if (
            span in seen
            or not tensor.is_contiguous()
            or tensor.untyped_storage().nbytes() != (tensor.numel() * tensor.element_size())
        ):
            tensors[name] = tensor.detach().clone().contiguous()
        seen.add(span)
    save_file(
        {k: v.detach() for k, v in tensors.items()},
        target,
        metadata={"format": "pt", "converted_by": "mlward", "source": os.path.basename(source)},
    )
    written = load_file(target)
    if written.keys() != tensors.keys() or not all(
        written[k].dtype == tensors[k].dtype and torch.equal(written[k], tensors[k].detach())
        for k in tensors
    ):
        raise ConversionError(
            f"{target} does not read back equal to {source}",
            fix="Report this as a bug; the target was left for inspection.",
        )
    return _finish(source, target, "safetensors", len(tensors), tuple(dropped), options)


# -- scikit-learn -> skops -------------------------------------------------------------------------
def _is_sklearn(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "sklearn"


def _to_skops(value: Any, source: str, target: str, options: ScanOptions) -> ConversionResult:
    try:
        import skops.io as sio  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ConversionError(
            "converting to skops needs skops", fix="pip install 'mlward[convert]'"
        ) from exc
    sio.dump(value, target)
    # Types skops asks about are the ones this process just wrote from a clean, allowlisted model.
    written = sio.load(target, trusted=sio.get_untrusted_types(file=target))
    if not structurally_equal(value, written):
        raise ConversionError(
            f"{target} does not read back equal to {source}",
            fix="Report this as a bug; the target was left for inspection.",
        )
    return _finish(source, target, "skops", 1, (), options)


def _finish(
    source: str, target: str, kind: str, items: int, dropped: tuple[str, ...], options: ScanOptions
) -> ConversionResult:
    verdict = Scanner(options).scan_file(target).verdict
    return ConversionResult(source, target, kind, items, dropped, verdict)


def structurally_equal(a: Any, b: Any, depth: int = 0) -> bool:
    """Equality for loaded models: arrays by value, objects by their pickled or attribute state."""
    if depth > 50:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, weakref.ref):
        return structurally_equal(a(), b(), depth + 1)
    if type(a).__module__.startswith("numpy") and hasattr(a, "dtype") and hasattr(a, "shape"):
        import numpy as np

        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.hasobject:
            return all(
                structurally_equal(x, y, depth + 1)
                for x, y in zip(a.ravel(), b.ravel(), strict=True)
            )
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(
            structurally_equal(x, y, depth + 1) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            structurally_equal(ka, kb, depth + 1) and structurally_equal(va, vb, depth + 1)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    state = getattr(a, "__dict__", None)
    if isinstance(state, dict) and state:
        return structurally_equal(state, b.__dict__, depth + 1)
    try:
        if bool(a == b):
            return True
    except Exception:  # noqa: BLE001 - == that is ambiguous or refuses
        pass
    getstate = getattr(a, "__getstate__", None)
    if getstate is not None and not isinstance(a, (str, bytes, int, complex)):
        try:  # Cython objects (trees) compare by identity: compare the state they pickle
            state_a, state_b = getstate(), b.__getstate__()
        except Exception:  # noqa: BLE001 - objects that refuse to give their state
            state_a = state_b = None
        if isinstance(state_a, (dict, tuple)):
            return structurally_equal(state_a, state_b, depth + 1)
    try:
        return pickle.dumps(a, protocol=4) == pickle.dumps(b, protocol=4)
    except Exception:  # noqa: BLE001 - unpicklable leaves fall back to their text
        return repr(a) == repr(b)
