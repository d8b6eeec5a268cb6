"""mlward convert: benign PyTorch and scikit-learn models round-trip with equal tensors or state;
object arrays and hostile files are refused."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mlward  # noqa: E402
from mlward.cli.main import ExitCode, main  # noqa: E402
from mlward.conversion import structurally_equal  # noqa: E402
from mlward.errors import InputError  # noqa: E402
from tests.corpus import ALL_BENIGN, BenignSample, load_artifact  # noqa: E402
from tests.payloads import ALL_SAMPLES  # noqa: E402

TORCH = [
    s for s in ALL_BENIGN
    if s.loader == "torch" and not s.name.startswith("torchscript")
]
SKLEARN = [
    s for s in ALL_BENIGN
    if s.name.startswith("sklearn_") and s.loader in {"pickle", "joblib"}
][::3]  # every third: the kinds repeat across protocols and codecs


def _build(sample: BenignSample, out: Path) -> Path:
    for module in sample.requires:
        pytest.importorskip(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sample.build(out)


@pytest.mark.parametrize("sample", TORCH, ids=lambda s: s.name)
def test_pytorch_checkpoints_become_equal_safetensors(sample: BenignSample, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    source = _build(sample, tmp_path)
    target = tmp_path / "out.safetensors"
    try:
        result = mlward.convert(source, target, drop_non_tensors=True)
    except mlward.ConversionError as exc:
        assert "no tensors" in exc.message  # e.g. a checkpoint of sparse or quantized values only
        return
    assert result.target_verdict is mlward.Verdict.CLEAN
    written = load_file(target)
    assert len(written) == result.items
    original = load_artifact("torch", source)
    if isinstance(original, torch.nn.Module):
        original = original.state_dict()
    flat = dict(_flatten(original, ""))
    for name, tensor in written.items():
        assert torch.equal(tensor, flat[name]), name


def _flatten(value: object, prefix: str):  # type: ignore[no-untyped-def]
    import torch

    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix or "value", value


@pytest.mark.parametrize("sample", SKLEARN, ids=lambda s: s.name)
def test_sklearn_models_become_equal_skops(sample: BenignSample, tmp_path: Path) -> None:
    import skops.io as sio

    source = _build(sample, tmp_path)
    target = tmp_path / "out.skops"
    result = mlward.convert(source, target)
    assert result.target_format == "skops"
    assert result.target_verdict is mlward.Verdict.CLEAN
    written = sio.load(target, trusted=sio.get_untrusted_types(file=target))
    assert structurally_equal(written, load_artifact(sample.loader, source))


def test_non_tensor_values_are_not_silently_dropped(tmp_path: Path) -> None:
    import torch

    source = tmp_path / "ckpt.pt"
    torch.save({"w": torch.ones(2), "epoch": 3}, source)
    with pytest.raises(mlward.ConversionError, match="epoch"):
        mlward.convert(source, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()
    assert main(["convert", str(source), str(tmp_path / "o.safetensors")]) == ExitCode.ERROR
    assert main(
        ["convert", "--drop-non-tensors", str(source), str(tmp_path / "o.safetensors")]
    ) == ExitCode.OK


def test_shared_tensors_are_written_as_copies(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    base = torch.arange(6.0)
    source = tmp_path / "shared.pt"
    torch.save({"a": base, "b": base[2:], "c": base.view(2, 3)}, source)
    mlward.convert(source, tmp_path / "out.safetensors")
    written = load_file(tmp_path / "out.safetensors")
    assert torch.equal(written["b"], base[2:]) and torch.equal(written["c"], base.view(2, 3))


def test_object_arrays_are_refused_with_a_reason(tmp_path: Path) -> None:
    import numpy as np

    source = tmp_path / "objects.npy"
    np.save(source, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(mlward.ConversionError, match="object array"):
        mlward.convert(source, tmp_path / "out.safetensors")


@pytest.mark.parametrize(
    "sample", [s for s in ALL_SAMPLES if s.loader == "torch"][:20], ids=lambda s: s.name
)
def test_hostile_checkpoints_are_refused_without_running(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "marker"
    source = sample.build(tmp_path, marker)
    with pytest.raises((mlward.UnsafeModelError, mlward.ConversionError, InputError)):
        mlward.convert(source, tmp_path / "out.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()
