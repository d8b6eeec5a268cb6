"""The in-memory dataset every reader produces and every detector reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mlward.errors import InputError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Rows in input order: ``x`` (n, d) floats, ``y`` (n,) integer labels.

    ``image_shape`` is set when each row is a flattened image (height, width[, channels]), so a
    detector or model can see it as one. ``classes`` maps label ids back to the input's names.
    """

    x: NDArray[np.float64]
    y: NDArray[np.int64]
    source: str = ""
    image_shape: tuple[int, ...] | None = None
    classes: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    # Original file names (image folders) or row keys; empty when the row index is the key.
    row_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.x.ndim != 2:
            raise InputError(
                f"{self.source or 'dataset'}: features must be 2-D (rows, features), "
                f"got shape {self.x.shape}",
                fix="Flatten each sample into one row.",
            )
        if self.y.shape != (self.x.shape[0],):
            raise InputError(
                f"{self.source or 'dataset'}: {self.x.shape[0]} rows but {self.y.shape[0]} labels",
                fix="Give exactly one label per row.",
            )
        if not self.classes:
            names = tuple(str(c) for c in range(int(self.y.max()) + 1)) if len(self.y) else ()
            object.__setattr__(self, "classes", names)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, rows: NDArray[np.intp]) -> Dataset:
        """The given rows, in the given order (names kept)."""
        return Dataset(
            x=self.x[rows],
            y=self.y[rows],
            source=self.source,
            image_shape=self.image_shape,
            classes=self.classes,
            feature_names=self.feature_names,
            row_names=tuple(self.row_names[i] for i in rows) if self.row_names else (),
        )

    def class_name(self, label: int) -> str:
        return self.classes[label] if 0 <= label < len(self.classes) else str(label)
