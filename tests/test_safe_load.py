"""mlward.load: every benign artifact loads equal to the real loader; every hostile one is refused.

Refusals are checked in this process on purpose: if the safe loader ever let a payload through, its
(harmless) marker file would appear and the test would fail.
"""

from __future__ import annotations

import pickle
import sys
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mlward  # noqa: E402
from mlward.errors import InputError  # noqa: E402
from tests.corpus import (  # noqa: E402
    ALL_BENIGN,
    UNSAFE_SAMPLES,
    USER_CLASS_SAMPLES,
    BenignSample,
    load_artifact,
)
from tests.payloads import ALL_SAMPLES, Sample  # noqa: E402


def _same(a: Any, b: Any, depth: int = 0) -> bool:
    """Structural equality that understands tensors, arrays, weak references and plain objects."""
    if depth > 40:
        return True
    if type(a) is not type(b):
        return False
    if _same_pickle(a, b):
        return True
    if isinstance(a, weakref.ref):
        return _same(a(), b(), depth + 1)
    if type(a).__module__.startswith("torch"):
        import torch

        if isinstance(a, torch.Tensor):
            return _same_tensor(a, b)
    if type(a).__module__.startswith("numpy"):
        import numpy as np

        if isinstance(a, np.ndarray):
            if a.dtype != b.dtype or a.shape != b.shape:
                return False
            if a.dtype.hasobject:
                pairs = zip(a.ravel(), b.ravel(), strict=True)
                return all(_same(x, y, depth + 1) for x, y in pairs)
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        # Pairwise in order: keys may be objects hashed by identity (optimizer state by param).
        pairs = zip(a.items(), b.items(), strict=False)
        return len(a) == len(b) and all(
            _same(ka, kb, depth + 1) and _same(va, vb, depth + 1) for (ka, va), (kb, vb) in pairs
        )
    state = getattr(a, "__dict__", None)
    if isinstance(state, dict) and state and type(a).__reduce_ex__ is object.__reduce_ex__:
        return _same(state, b.__dict__, depth + 1)
    try:
        if bool(a == b):
            return True
    except Exception:
        pass
    getstate = getattr(a, "__getstate__", None)
    if getstate is not None and not isinstance(a, (str, bytes, int, float, complex)):
        try:
            state_a, state_b = getstate(), b.__getstate__()
        except Exception:
            state_a = state_b = None
        if isinstance(state_a, (dict, tuple)):
            return _same(state_a, state_b, depth + 1)
    return repr(a) == repr(b)  # NaN-like leaves (Decimal('NaN'), float nan)


def _same_pickle(a: Any, b: Any) -> bool:
    # Objects that define their own pickled state (trees, boosters, sparse matrices) are equal
    # when that state is; identity-based == and handles inside __dict__ would say otherwise.
    try:
        return pickle.dumps(a, protocol=4) == pickle.dumps(b, protocol=4)
    except Exception:
        return False


def _same_tensor(a: Any, b: Any) -> bool:
    import torch

    if a.dtype != b.dtype or a.shape != b.shape or a.layout != b.layout:
        return False
    if a.layout != torch.strided:
        a, b = a.to_dense(), b.to_dense()
    if a.is_quantized:
        return bool(torch.equal(a.int_repr(), b.int_repr()))
    if a.dtype.is_floating_point or a.dtype.is_complex:
        if not a.numel():
            return True
        # Bitwise, so NaNs and signed zeros count too.
        flat_a, flat_b = a.contiguous().reshape(-1), b.contiguous().reshape(-1)
        return bool(torch.equal(flat_a.view(torch.uint8), flat_b.view(torch.uint8)))
    return bool(torch.equal(a, b))


def _real(sample: BenignSample, path: Path) -> Any:
    value = load_artifact(sample.loader, path)
    if sample.loader == "numpy" and hasattr(value, "files"):
        return {name: value[name] for name in value.files}
    return value


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safe_load")


@pytest.mark.parametrize("sample", ALL_BENIGN, ids=lambda s: s.name)
def test_benign_artifacts_load_equal_to_the_real_loader(
    sample: BenignSample, out_dir: Path
) -> None:
    for module in sample.requires:
        pytest.importorskip(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = sample.build(out_dir)
        expected = _real(sample, path)
        if path.name.startswith("torchscript"):
            with pytest.raises(InputError, match="TorchScript"):
                mlward.load(path)
            return
        loaded = mlward.load(path)
    if sample.loader == "numpy" and isinstance(loaded, dict):
        assert loaded.keys() == expected.keys()
    assert _same(loaded, expected), sample.name


@pytest.mark.parametrize("sample", USER_CLASS_SAMPLES, ids=lambda s: s.name)
def test_user_classes_are_refused_until_allowed(sample: BenignSample, out_dir: Path) -> None:
    for module in sample.requires:
        pytest.importorskip(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = sample.build(out_dir)
        with pytest.raises(mlward.UnsafeModelError) as refusal:
            mlward.load(path)
        assert set(sample.user_globals) <= set(refusal.value.untrusted)
        assert "allow=" in refusal.value.fix
        loaded = mlward.load(path, allow=refusal.value.untrusted)
        assert _same(loaded, _real(sample, path))


@pytest.mark.parametrize("sample", UNSAFE_SAMPLES, ids=lambda s: s.name)
def test_reviewed_unsafe_globals_are_refused(sample: BenignSample, out_dir: Path) -> None:
    """pyarrow arrays: refused for _restore_array alone; the type factories resolve."""
    for module in sample.requires:
        pytest.importorskip(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = sample.build(out_dir)
        with pytest.raises(mlward.UnsafeModelError) as refusal:
            mlward.load(path)
    assert set(refusal.value.untrusted) == set(sample.unsafe_globals)


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=lambda s: s.name)
def test_hostile_samples_are_refused_without_running(sample: Sample, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = sample.build(tmp_path, marker)
    with pytest.raises((mlward.UnsafeModelError, InputError)):
        mlward.load(path)
    assert not marker.exists(), f"{sample.name}: the payload ran inside mlward.load"


def test_torch_load_refuses_and_loads(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.pt"
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    torch.save(model.state_dict(), path)
    loaded = mlward.torch_load(path, map_location="cpu")
    assert torch.equal(loaded["0.weight"], model.state_dict()["0.weight"])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.")
    with pytest.raises(mlward.UnsafeModelError, match=r"os\.system"):
        mlward.torch_load(bad)
