"""ART 1.20.1's poisoning detectors on one dataset, run inside bench/.venvs/art.

Usage: peer_art.py IN.npz OUT.json. IN holds x (n, d) and y (n,). The detectors need a neural
classifier to read activations from, so a small PyTorch MLP (64 hidden units) is trained on the
(poisoned) rows, seeded; then ActivationDefence and SpectralSignatureDefense run with ART's
default settings (no poison-rate hint beyond ART's own default expected_pp_poison=0.33).
Writes {"art-ac": [rows], "art-ss": [rows], "seconds": {...}}.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
from art.estimators.classification import PyTorchClassifier


def main() -> int:
    source, target = sys.argv[1], sys.argv[2]
    data = np.load(source)
    x = data["x"].astype(np.float32)
    y = data["y"].astype(np.int64)
    mean, spread = x.mean(axis=0), x.std(axis=0)
    spread[spread < 1e-12] = 1.0
    x = (x - mean) / spread
    classes = int(y.max()) + 1
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, classes)
    )
    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        input_shape=(x.shape[1],),
        nb_classes=classes,
    )
    onehot = np.eye(classes, dtype=np.float32)[y]
    started = time.perf_counter()
    classifier.fit(x, onehot, batch_size=128, nb_epochs=30, verbose=False)
    seconds = {"train": time.perf_counter() - started}
    result: dict[str, object] = {}
    started = time.perf_counter()
    _, clean = ActivationDefence(classifier, x, onehot).detect_poison()
    result["art-ac"] = [int(i) for i in np.flatnonzero(np.asarray(clean) == 0)]
    seconds["art-ac"] = time.perf_counter() - started
    started = time.perf_counter()
    _, clean = SpectralSignatureDefense(classifier, x, onehot).detect_poison()
    result["art-ss"] = [int(i) for i in np.flatnonzero(np.asarray(clean) == 0)]
    seconds["art-ss"] = time.perf_counter() - started
    result["seconds"] = seconds
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
