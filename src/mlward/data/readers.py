"""Dataset readers: NumPy, CSV, Parquet and image folders, into one ``Dataset``.

Every reader keeps the input's row order, so row indices in a report point back at the file.
NumPy files are read with ``allow_pickle=False``: a dataset is never a reason to run code.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.dataset import Dataset
from mlward.errors import InputError

_LABEL_NAMES = ("label", "labels", "target", "y", "class")
_FEATURE_KEYS = ("x", "X", "data", "features", "inputs", "images")
_LABEL_KEYS = ("y", "labels", "label", "target", "targets")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _missing_extra(package: str, exc: ImportError) -> InputError:
    return InputError(
        f"reading this dataset needs {package}, which is not installed ({exc})",
        fix="pip install 'mlward[data]'",
    )


def _encode_labels(raw: NDArray[Any]) -> tuple[NDArray[np.int64], tuple[str, ...]]:
    """Integer labels as they are (0..k-1 keeps its meaning); anything else sorted and indexed."""
    if raw.dtype.kind in "iub" and (raw.size == 0 or raw.min() >= 0):
        labels = raw.astype(np.int64)
        top = int(labels.max()) + 1 if labels.size else 0
        return labels, tuple(str(c) for c in range(top))
    if (
        raw.dtype.kind == "f"
        and np.all(np.isfinite(raw))
        and np.all(raw == np.round(raw))
        and (raw.size == 0 or raw.min() >= 0)
    ):
        return _encode_labels(raw.astype(np.int64))
    names, labels = np.unique(raw.astype(str), return_inverse=True)
    return labels.astype(np.int64), tuple(str(n) for n in names)


def _features(raw: NDArray[Any], source: str) -> NDArray[np.float64]:
    try:
        x = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{source}: features are not all numeric ({exc})",
            fix="Encode categorical columns as numbers, or pass --features with numeric ones.",
        ) from exc
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if not np.all(np.isfinite(x)):
        raise InputError(
            f"{source}: features contain NaN or infinite values",
            fix="Impute or drop missing values first.",
        )
    return x


def _numpy_array(path: str) -> NDArray[Any] | dict[str, NDArray[Any]]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(
            f"{path}: holds Python objects, which would need pickle to read ({exc})",
            fix="Save plain numeric arrays (np.save / np.savez without object dtype).",
        ) from exc
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def _pick(
    arrays: dict[str, NDArray[Any]],
    wanted: str | None,
    names: tuple[str, ...],
    path: str,
    what: str,
) -> NDArray[Any]:
    if wanted is not None:
        if wanted not in arrays:
            raise InputError(
                f"{path}: no array named {wanted!r} (it has {', '.join(arrays)})",
                fix=f"Pass the name of the {what} array.",
            )
        return arrays[wanted]
    for name in names:
        if name in arrays:
            return arrays[name]
    raise InputError(
        f"{path}: cannot tell which array holds the {what} (it has {', '.join(arrays)})",
        fix=f"Name the {what} array {names[0]!r}.",
    )


def read_numpy(
    path: str,
    labels: str | None = None,
    *,
    x_key: str | None = None,
    y_key: str | None = None,
) -> Dataset:
    loaded = _numpy_array(path)
    if isinstance(loaded, dict):
        x_raw = _pick(loaded, x_key, _FEATURE_KEYS, path, "features")
        y_raw = _pick(loaded, y_key, _LABEL_KEYS, path, "labels")
    else:
        if labels is None:
            raise InputError(
                f"{path}: a .npy file holds features only",
                fix="Pass --labels FILE.npy (one label per row), or save x and y in one .npz.",
            )
        x_raw = loaded
        y_loaded = _numpy_array(labels)
        if isinstance(y_loaded, dict):
            y_raw = _pick(y_loaded, y_key, _LABEL_KEYS, labels, "labels")
        else:
            y_raw = y_loaded
    shape = tuple(int(s) for s in x_raw.shape[1:]) if x_raw.ndim > 2 else None
    y, classes = _encode_labels(np.asarray(y_raw).reshape(-1))
    return Dataset(_features(x_raw, path), y, path, shape, classes)


def _read_table(path: str, kind: str) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise _missing_extra("pandas", exc) from exc
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as exc:
        raise _missing_extra("a Parquet engine (fastparquet or pyarrow)", exc) from exc
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read {path}: {exc}", fix=f"Check that it is a {kind} file."
        ) from exc


def read_table(path: str, kind: str, label: str | None = None) -> Dataset:
    frame = _read_table(path, kind)
    columns = [str(c) for c in frame.columns]
    if label is None:
        label = next((c for c in columns if c.lower() in _LABEL_NAMES), None)
    if label is None or label not in columns:
        raise InputError(
            f"{path}: no label column {'named ' + repr(label) if label else 'found'} "
            f"(columns: {', '.join(columns[:20])})",
            fix="Pass --label COLUMN.",
        )
    y, classes = _encode_labels(frame[label].to_numpy())
    features = frame.drop(columns=[label])
    return Dataset(
        _features(features.to_numpy(), path),
        y,
        path,
        None,
        classes,
        tuple(str(c) for c in features.columns),
    )


def read_image_folder(path: str) -> Dataset:
    """``path/<class>/<image>``: one sub-folder per class, every image the same size."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise _missing_extra("Pillow", exc) from exc
    classes = sorted(
        d
        for d in os.listdir(path)
        if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")
    )
    rows: list[NDArray[np.float64]] = []
    labels: list[int] = []
    names: list[str] = []
    shape: tuple[int, ...] | None = None
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        for file in sorted(os.listdir(folder)):
            if not file.lower().endswith(_IMAGE_SUFFIXES):
                continue
            with Image.open(os.path.join(folder, file)) as image:
                pixels = np.asarray(
                    image.convert("L" if image.mode in {"1", "L", "P"} else "RGB"), dtype=np.float64
                )
            if shape is None:
                shape = pixels.shape
            elif pixels.shape != shape:
                raise InputError(
                    f"{folder}/{file} is {pixels.shape}, the first image was {shape}",
                    fix="Resize every image to one size first.",
                )
            rows.append(pixels.reshape(-1))
            labels.append(label)
            names.append(f"{name}/{file}")
    if not rows:
        raise InputError(
            f"{path}: no images in class sub-folders",
            fix="Lay images out as DIR/<class>/<file>.png.",
        )
    return Dataset(
        np.stack(rows),
        np.asarray(labels, dtype=np.int64),
        path,
        shape,
        tuple(classes),
        (),
        tuple(names),
    )


def read_dataset(
    path: str | os.PathLike[str],
    *,
    label: str | None = None,
    labels: str | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
) -> Dataset:
    """Read a dataset by its kind: a folder of class folders, .npy/.npz, .csv, .parquet."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory", fix="Check the dataset path.")
    if os.path.isdir(path):
        return read_image_folder(path)
    lower = path.lower()
    if lower.endswith((".npy", ".npz")):
        return read_numpy(path, labels, x_key=x_key, y_key=y_key)
    if lower.endswith((".csv", ".tsv", ".txt")):
        return read_table(path, "csv", label)
    if lower.endswith((".parquet", ".pq")):
        return read_table(path, "parquet", label)
    raise InputError(
        f"{path}: unknown dataset kind",
        fix="Use .npy/.npz, .csv, .parquet, or a folder of class sub-folders of images.",
    )


def write_dataset(dataset: Dataset, path: str | os.PathLike[str], label: str = "label") -> None:
    """Write rows and labels in the kind the path names (.npz, .csv, .parquet)."""
    path = os.fspath(path)
    lower = path.lower()
    try:
        if lower.endswith(".npz"):
            x = (
                dataset.x.reshape((len(dataset), *dataset.image_shape))
                if dataset.image_shape
                else dataset.x
            )
            np.savez(path, x=x, y=dataset.y)
            return
        if lower.endswith((".csv", ".parquet", ".pq")):
            try:
                import pandas as pd
            except ImportError as exc:
                raise _missing_extra("pandas", exc) from exc
            names = list(dataset.feature_names) or [f"f{i}" for i in range(dataset.x.shape[1])]
            frame = pd.DataFrame(dataset.x, columns=names)
            frame[label] = [dataset.class_name(int(v)) for v in dataset.y]
            if lower.endswith(".csv"):
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            return
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc}", fix="Pick a folder you can write to."
        ) from exc
    raise InputError(f"{path}: unknown output kind", fix="Write to .npz, .csv or .parquet.")
