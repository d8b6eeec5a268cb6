"""Load pickle-family files through the scanner's allowlist, from the very bytes it scanned.

The file is read once. Those bytes are scanned; anything the scan does not call clean is refused
with the list of untrusted globals and the exact ``allow=`` that would admit them. Then the same
bytes are loaded by the real loader (pickle, joblib, numpy or torch) with ``find_class`` replaced
by one that imports only trusted globals: a second line of defence, not the only one.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import types
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from mlward.errors import InputError, UnsafeModelError
from mlward.formats import compressed, npy
from mlward.options import Limits, ScanOptions
from mlward.results import ArtifactResult, Severity, Verdict
from mlward.scanning.engine import Scanner
from mlward.scanning.pickle_vm import _remap
from mlward.scanning.policy import Policy, Trust


def _read(path: str | os.PathLike[str], limits: Limits) -> tuple[str, bytes]:
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_file_bytes:
                raise InputError(
                    f"{name}: {size} bytes exceed the limit of {limits.max_file_bytes}",
                    fix="Raise Limits.max_file_bytes if this file is expected to be this large.",
                )
            return name, handle.read()
    except OSError as exc:
        raise InputError(
            f"{name}: {exc.strerror}", fix="Check the path and its permissions."
        ) from exc


def _require_clean(result: ArtifactResult) -> None:
    if result.verdict is Verdict.CLEAN:
        return
    untrusted = tuple(
        sorted({str(f.evidence["global"]) for f in result.findings if f.rule_id == "MW101"})
    )
    problems = tuple(
        f"{f.rule_id} {f.title}: {f.message}"
        for f in result.findings
        if (f.severity is not Severity.INFO or f.incomplete) and f.rule_id != "MW101"
    )
    raise UnsafeModelError(result.path, untrusted, problems)


class _Resolver:
    """find_class for the real loaders: imports only what the policy trusts."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._origins: dict[int, tuple[str, str]] = {}

    def find_class(self, module: str, name: str) -> Any:
        module, name, _ = _remap(module, name)
        if f"{module}.{name}" == "builtins.getattr":
            return self._getattr
        if self.policy.decide(module, name).trust is not Trust.TRUSTED:
            raise pickle.UnpicklingError(f"mlward refused to import {module}.{name}")
        value: Any = importlib.import_module(module)
        for part in name.split("."):
            value = getattr(value, part)
        self._origins[id(value)] = (module, name)
        return value

    def _getattr(self, obj: Any, attribute: str, *_default: Any) -> Any:
        # Only getattr(<trusted global>, "constant") whose result is itself a trusted global:
        # what pickles of bound methods (pandas time zones) need, and nothing more.
        origin = self._origins.get(id(obj))
        if origin is None or not isinstance(attribute, str):
            raise pickle.UnpicklingError("mlward refused getattr on an object it did not import")
        module, qualname = origin
        return self.find_class(module, f"{qualname}.{attribute}")


def _pickle_module(resolver: _Resolver) -> types.ModuleType:
    """A stand-in for the pickle module that torch.load (pickle_module=) and joblib use."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return resolver.find_class(module, name)

    def load(file: BinaryIO, **kwargs: Any) -> Any:
        return Unpickler(file, **kwargs).load()

    def loads(data: bytes, **kwargs: Any) -> Any:
        return Unpickler(io.BytesIO(data), **kwargs).load()

    module = types.ModuleType("mlward_restricted_pickle")
    module.Unpickler = Unpickler  # type: ignore[attr-defined]
    module.load = load  # type: ignore[attr-defined]
    module.loads = loads  # type: ignore[attr-defined]
    module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    module.__version__ = "1"  # type: ignore[attr-defined]
    return module


def _load_torch(data: bytes, resolver: _Resolver, map_location: Any) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise InputError(
            "this is a PyTorch checkpoint and torch is not installed",
            fix="pip install 'mlward[torch]'",
        ) from exc
    return torch.load(
        io.BytesIO(data),
        map_location=map_location,
        weights_only=False,
        pickle_module=_pickle_module(resolver),
    )


def _load_joblib(data: bytes, resolver: _Resolver) -> Any:
    try:
        from joblib import numpy_pickle  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise InputError(
            "this is a joblib file and joblib is not installed", fix="pip install joblib"
        ) from exc

    class Unpickler(numpy_pickle.NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            return resolver.find_class(module, name)

    with numpy_pickle._validate_fileobject_and_memmap(io.BytesIO(data), "", None) as (fobj, _):
        return Unpickler("", fobj, ensure_native_byte_order=True).load()


def _load_npy(data: bytes, resolver: _Resolver) -> Any:
    import numpy as np

    header = npy.read_header(data[: 1 << 20])
    if not header.has_object:
        return np.load(io.BytesIO(data), allow_pickle=False)
    # numpy reads object arrays with pickle.load(fp, encoding="ASCII"); do the same, restricted.
    unpickler = _pickle_module(resolver).Unpickler(
        io.BytesIO(data[header.data_offset :]), encoding="ASCII"
    )
    return unpickler.load()


def _load_npz(data: bytes, resolver: _Resolver) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            name.removesuffix(".npy"): _load_npy(archive.read(name), resolver)
            for name in archive.namelist()
        }


def _load_pickle(data: bytes, resolver: _Resolver) -> Any:
    return _pickle_module(resolver).Unpickler(io.BytesIO(data)).load()


@dataclass(frozen=True)
class CheckedFile:
    """A file read once and scanned clean: these bytes, and only these, may be loaded."""

    name: str
    data: bytes
    result: ArtifactResult
    allow: tuple[str, ...]

    def load(self, map_location: Any = None) -> Any:
        loader = _loader_for(self.result.formats, self.name)
        resolver = _Resolver(Policy(self.allow))
        if loader == "torch":
            return _load_torch(self.data, resolver, map_location)
        return _LOADERS[loader](self.data, resolver)


def check(
    path: str | os.PathLike[str], allow: Iterable[str] = (), limits: Limits | None = None
) -> CheckedFile:
    """Read and scan a file; UnsafeModelError unless the scan calls it clean."""
    options = ScanOptions(allow=tuple(allow), limits=limits or Limits())
    name, data = _read(path, options.limits)
    result = Scanner(options).scan_bytes(data, name)
    _require_clean(result)
    return CheckedFile(name, data, result, options.allow)


def load(
    path: str | os.PathLike[str],
    allow: Iterable[str] = (),
    *,
    map_location: Any = None,
    limits: Limits | None = None,
) -> Any:
    """Load a pickle, PyTorch checkpoint, joblib or NumPy file only if it scans clean.

    Raises UnsafeModelError (listing every untrusted global and the ``allow=`` that admits
    them) for anything else; nothing from a refused file is imported or run.
    """
    return check(path, allow, limits).load(map_location)


def torch_load(
    path: str | os.PathLike[str],
    allow: Iterable[str] = (),
    *,
    map_location: Any = None,
    limits: Limits | None = None,
) -> Any:
    """Like torch.load(weights_only=False), but only for files that scan clean."""
    checked = check(path, allow, limits)
    if _loader_for(checked.result.formats, checked.name) not in {"torch", "pickle"}:
        raise InputError(
            f"{checked.name} is {', '.join(checked.result.formats)}, not a PyTorch checkpoint",
            fix="Use mlward.load for other formats.",
        )
    return _load_torch(checked.data, _Resolver(Policy(checked.allow)), map_location)


_LOADERS: dict[str, Callable[[bytes, _Resolver], Any]] = {
    "joblib": _load_joblib,
    "npy": _load_npy,
    "npz": _load_npz,
    "pickle": _load_pickle,
}


_CODECS = frozenset(codec.name for codec in compressed.CODECS)


def _loader_for(formats: tuple[str, ...], name: str) -> str:
    if not formats:
        raise InputError(f"{name}: format not recognised", fix="Pass a pickle-family file.")
    if formats[0] == "torchscript":
        raise InputError(
            f"{name} is a TorchScript archive; the safe loader reads pickles only",
            fix="Load TorchScript with torch.jit.load if you trust its code.",
        )
    if formats[0] in {"pytorch-zip", "pytorch-legacy", "pytorch-legacy-tar"}:
        return "torch"
    if formats[0] in {"npy", "npz"}:
        return formats[0]
    if "joblib" in formats or (formats[0] in _CODECS and formats[1:2] == ("pickle",)):
        return "joblib"  # joblib also opens plain pickles compressed with its codecs
    if formats[0] == "pickle":
        return "pickle"
    raise InputError(
        f"{name} is {', '.join(formats)}, not a pickle-family file",
        fix="mlward.load reads pickle, PyTorch, joblib and NumPy files.",
    )
