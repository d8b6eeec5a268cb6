"""A user-defined plain-Python config object, as training scripts put into checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingConfig:
    lr: float = 1e-3
    epochs: int = 3
    layers: list[int] = field(default_factory=lambda: [4, 8, 2])
