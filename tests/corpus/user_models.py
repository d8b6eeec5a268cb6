"""A user-defined PyTorch model: benign, but its class lives outside every allowlisted library."""

from __future__ import annotations

import torch
from torch import nn


class MyNet(nn.Module):
    """A small model a user writes in their own package and saves with ``torch.save(model)``."""

    def __init__(self, n_in: int = 4, n_hidden: int = 8, n_out: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU())
        self.head = nn.Linear(n_hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
