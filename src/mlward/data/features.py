"""The feature space the detectors work in: the input, a reference model's, or a torch model's.

For a torch model the features are the input of the module that produces the logits, found by
watching one forward pass with hooks: the last module with parameters whose output has one
column per class. Guessing "the last layer" by position breaks on models that end in a
softmax, a reshape or a functional call.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.dataset import Dataset
from mlward.errors import InputError


def standardise(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Zero mean, unit variance per column; constant columns stay at zero."""
    spread = x.std(axis=0)
    spread[spread < 1e-12] = 1.0
    return np.asarray((x - x.mean(axis=0)) / spread, dtype=np.float64)


def reference_model_features(dataset: Dataset, seed: int = 0) -> NDArray[np.float64]:
    """Hidden activations of a small MLP trained on the dataset (scikit-learn)."""
    from sklearn.neural_network import MLPClassifier

    x = standardise(dataset.x)
    model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=seed)
    model.fit(x, dataset.y)
    hidden = np.maximum(x @ model.coefs_[0] + model.intercepts_[0], 0.0)
    return np.asarray(hidden, dtype=np.float64)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise InputError(
            f"features from a torch model need torch ({exc})", fix="pip install 'mlward[torch]'"
        ) from exc
    return torch


def model_input(dataset: Dataset) -> Any:
    """The dataset as the tensor the model expects: images as (n, channels, height, width)."""
    torch = _torch()
    x = torch.as_tensor(dataset.x, dtype=torch.float32)
    if dataset.image_shape is not None:
        shape = dataset.image_shape
        if len(shape) == 2:
            x = x.reshape(len(dataset), 1, shape[0], shape[1])
        else:
            x = x.reshape(len(dataset), shape[0], shape[1], shape[2]).permute(0, 3, 1, 2)
    return x


def penultimate(model: Any, inputs: Any, classes: int, batch: int = 512) -> NDArray[np.float64]:
    """The input of the module that produces the logits, found by hooks on one forward pass."""
    torch = _torch()
    seen: list[tuple[Any, Any, Any]] = []

    def record(module: Any, args: Any, output: Any) -> None:
        if args and torch.is_tensor(args[0]) and torch.is_tensor(output):
            seen.append((module, args[0], output))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    model.eval()
    try:
        with torch.no_grad():
            model(inputs[:2])
    finally:
        for handle in handles:
            handle.remove()
    head = None
    for module, _, output in reversed(seen):
        has_weights = any(True for _ in module.parameters(recurse=False))
        if has_weights and output.ndim == 2 and output.shape[1] == classes:
            head = module
            break
    if head is None:
        raise InputError(
            f"no layer with weights produces {classes} outputs (one per class) in this model",
            fix="Pass --features FILE with features you computed, or check --model.",
        )
    chunks: list[NDArray[np.float64]] = []

    def capture(module: Any, args: Any) -> None:
        chunks.append(args[0].detach().reshape(args[0].shape[0], -1).double().numpy())

    handle = head.register_forward_pre_hook(capture)
    try:
        with torch.no_grad():
            for start in range(0, int(inputs.shape[0]), batch):
                model(inputs[start : start + batch])
    finally:
        handle.remove()
    return np.concatenate(chunks)


def load_torch_model(model_path: str | os.PathLike[str], allow: tuple[str, ...] = ()) -> Any:
    """A whole torch model, through mlward's safe loader (never plain torch.load)."""
    _torch()
    from mlward.scanning.safe_load import torch_load

    model = torch_load(model_path, allow, map_location="cpu")
    if not callable(model) or not hasattr(model, "modules"):
        raise InputError(
            f"{os.fspath(model_path)} holds a {type(model).__name__}, not a whole torch model",
            fix="Save the model object with torch.save(model, path), not its state_dict.",
        )
    return model


def torch_model_features(
    dataset: Dataset, model_path: str | os.PathLike[str], allow: tuple[str, ...] = ()
) -> NDArray[np.float64]:
    """Penultimate activations of a torch model loaded through mlward's safe loader."""
    model = load_torch_model(model_path, allow)
    classes = max(len(dataset.classes), int(dataset.y.max()) + 1)
    return penultimate(model, model_input(dataset), classes)


def given_features(path: str | os.PathLike[str], rows: int) -> NDArray[np.float64]:
    """Features computed elsewhere: a .npy (rows, d) in the dataset's row order."""
    try:
        x = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read features {os.fspath(path)}: {exc}", fix="Pass a .npy array."
        ) from exc
    if not isinstance(x, np.ndarray) or x.shape[0] != rows:
        raise InputError(
            f"{os.fspath(path)}: expected {rows} rows of features",
            fix="Save one feature row per dataset row, in the same order (.npy).",
        )
    return np.asarray(x.reshape(rows, -1), dtype=np.float64)
