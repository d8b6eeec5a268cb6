"""Backdoored models: a Neural Cleanse-style search for a minimal trigger per class.

For every class, find the smallest mask (and a pattern under it) that sends the sample rows to
that class: ``x' = (1 - m) * x + m * p``, minimising cross-entropy plus ``lambda * |m|_1``. A
backdoor's target class needs a far smaller mask than the others; the anomaly index is how many
scaled MADs its mask norm lies below the median (Wang et al. 2019 flag > 2). A class only counts
when its recovered trigger actually works (attack success >= 0.9), so a small but useless mask
cannot be mistaken for a trigger.

On small inputs (8x8 digits) the plain anomaly index also singles out classes that any model
of the data is easy to push towards with a few pixels (a natural "8"). So each recovered
trigger is also stamped on the sample for a twin: the same architecture, re-initialised and
trained on the (clean, labelled) sample. A learned backdoor works on the suspect model and not
on the twin; a natural weakness of the data works on both. A class is named only when its mask
is anomalous AND its trigger fails on the twin (success <= 0.25).

The free-form search misses patch triggers on small images: a 3x3 patch is 9 of 64 pixels,
about what any class needs, so the target's mask is not anomalously small. Image models are
therefore also searched for a patch: a k x k window at every position, its pattern optimised
to send the sample to the class. A learned BadNets trigger sends nearly every row there; the
best natural patch of a small CNN sends two thirds. A class is named when its patch works on
the model (>= 0.9) and not on the twin (<= 0.25).

Some architectures have natural universal patches: an MLP over raw 8x8 pixels, clean, is sent
to one class by a 3x3 patch on every row (random weights on always-blank pixels are never
trained). When twins themselves have such a patch (most of three from different seeds; one
alone may owe it to its initialisation), or patches send the model to more than one class,
neither search can tell a backdoor from the architecture's weakness, and the scan says so
(inconclusive) instead of naming a class.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlward.data.dataset import Dataset
from mlward.errors import InputError

# Wang et al. use 2; with the twin check as a second gate, 1.8 keeps a checker-pattern
# backdoor on digits (index 2.0) while clean models stay unflagged (measured on seeds 0-2).
_ANOMALY_INDEX = 1.8
_MIN_SUCCESS = 0.9
_MAX_TWIN_SUCCESS = 0.25
# Patch search: windows of about an eighth of the image side (at least 3 pixels), a pattern
# started dark (BadNets patches sit on background) and optimised for a few dozen steps.
_PATCH_SUCCESS = 0.9
_PATCH_MIN_SIZE = 3
_PATCH_ROWS = 32
_PATCH_STEPS = 40
_PATCH_LEARNING_RATE = 0.5
_PATCH_START = -2.0
# Twins (from different seeds) asked whether a universal patch is the architecture's; only
# the first is trained unless it has one.
_TWINS = 3
# Above this many window positions the windows step by half their size.
_PATCH_MAX_POSITIONS = 100


@dataclass(frozen=True, eq=False)
class ClassTrigger:
    label: int
    mask_l1: float
    attack_success: float
    anomaly_index: float
    twin_success: float | None
    mask: NDArray[np.float64]  # in the input's shape (flattened rows: one value per feature)
    pattern: NDArray[np.float64]
    # Image models: the best k x k patch for this class, where it sits (top, left, size), how
    # many sample rows it sends here, and on the twin.
    patch_success: float | None = None
    patch_twin_success: float | None = None
    patch: tuple[int, int, int] | None = None


@dataclass(frozen=True, eq=False)
class BackdoorScan:
    source: str
    classes: tuple[ClassTrigger, ...]
    suspected: tuple[int, ...]  # target classes, most anomalous first
    image_shape: tuple[int, ...] | None
    seconds: float
    # Why no class can be named either way (the twin has a natural universal patch), or None.
    inconclusive: str | None = None

    @property
    def backdoored(self) -> bool:
        return bool(self.suspected)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise InputError(
            f"scanning a model for backdoors needs torch ({exc})", fix="pip install 'mlward[torch]'"
        ) from exc
    return torch


def _reverse(
    model: Any,
    inputs: Any,
    label: int,
    low: Any,
    high: Any,
    mask_shape: tuple[int, ...],
    steps: int,
    weight: float,
    seed: int,
) -> tuple[Any, Any, float]:
    torch = _torch()
    generator = torch.Generator().manual_seed(seed + label)
    mask_raw = (torch.rand(mask_shape, generator=generator) * 0.2 - 3.0).requires_grad_(True)
    pattern_raw = (torch.rand(inputs.shape[1:], generator=generator) * 2 - 1).requires_grad_(True)
    optimiser = torch.optim.Adam([mask_raw, pattern_raw], lr=0.1)
    target = torch.full((inputs.shape[0],), label, dtype=torch.long)
    for _ in range(steps):
        mask = torch.sigmoid(mask_raw)
        pattern = low + (high - low) * torch.sigmoid(pattern_raw)
        stamped = (1 - mask) * inputs + mask * pattern
        loss = torch.nn.functional.cross_entropy(model(stamped), target) + weight * mask.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        mask = torch.sigmoid(mask_raw)
        pattern = low + (high - low) * torch.sigmoid(pattern_raw)
        stamped = (1 - mask) * inputs + mask * pattern
        success = float((model(stamped).argmax(dim=1) == label).float().mean())
    return mask.detach(), pattern.detach(), success


def _windows(height: int, width: int) -> tuple[Any, list[tuple[int, int, int]]]:
    """Masks (positions, 1, height, width) of every k x k window, and (top, left, k) of each."""
    torch = _torch()
    size = max(_PATCH_MIN_SIZE, min(height, width) // 8)
    stride = 1
    if (height - size + 1) * (width - size + 1) > _PATCH_MAX_POSITIONS:
        stride = max(1, size // 2)
    places = [
        (top, left, size)
        for top in range(0, height - size + 1, stride)
        for left in range(0, width - size + 1, stride)
    ]
    masks = torch.zeros(len(places), 1, height, width)
    for i, (top, left, _) in enumerate(places):
        masks[i, :, top : top + size, left : left + size] = 1.0
    return masks, places


def patch_search(
    model: Any, inputs: Any, label: int, low: Any, high: Any, masks: Any
) -> tuple[float, int, Any]:
    """The patch (one of ``masks``, all positions at once) sending most ``inputs`` to
    ``label``: its success, its window index, and the stamped inputs."""
    torch = _torch()
    rows, channels, height, width = inputs.shape
    positions = masks.shape[0]
    raw = torch.full((positions, channels, height, width), _PATCH_START, requires_grad=True)
    optimiser = torch.optim.Adam([raw], lr=_PATCH_LEARNING_RATE)
    target = torch.full((positions * rows,), label, dtype=torch.long)

    def stamped() -> Any:
        pattern = low + (high - low) * torch.sigmoid(raw)
        batch = (1 - masks[:, None]) * inputs[None] + (masks * pattern)[:, None]
        return batch.reshape(positions * rows, channels, height, width)

    for _ in range(_PATCH_STEPS):
        loss = torch.nn.functional.cross_entropy(model(stamped()), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        batch = stamped()
        hits = (model(batch).argmax(dim=1) == label).float().reshape(positions, rows).mean(dim=1)
        best = int(hits.argmax())
        return float(hits[best]), best, batch.reshape(positions, rows, *inputs.shape[1:])[best]


def train_twin(model: Any, inputs: Any, labels: Any, seed: int, epochs: int = 200) -> Any:
    """The same architecture, re-initialised and trained on the sample."""
    import copy

    torch = _torch()
    torch.manual_seed(seed)
    twin = copy.deepcopy(model)
    for module in twin.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    for parameter in twin.parameters():
        parameter.requires_grad_(True)
    twin.train()
    optimiser = torch.optim.Adam(twin.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    batch = 256
    for _ in range(epochs):
        order = torch.randperm(inputs.shape[0], generator=generator)
        for start in range(0, inputs.shape[0], batch):
            chosen = order[start : start + batch]
            loss = torch.nn.functional.cross_entropy(twin(inputs[chosen]), labels[chosen])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    twin.eval()
    for parameter in twin.parameters():
        parameter.requires_grad_(False)
    return twin


def scan(
    model: Any,
    sample: Dataset,
    *,
    steps: int = 150,
    weight: float = 0.1,
    rows: int = 128,
    twin: bool = True,
    seed: int = 0,
) -> BackdoorScan:
    """Search every class for a minimal trigger; name the classes whose trigger is anomalous."""
    torch = _torch()
    threads = torch.get_num_threads()
    # Tiny models run fastest on one thread; on a shared machine more threads only contend.
    torch.set_num_threads(1)
    try:
        return _scan(model, sample, steps, weight, rows, twin, seed)
    finally:
        torch.set_num_threads(threads)


def _scan(
    model: Any, sample: Dataset, steps: int, weight: float, rows: int, twin: bool, seed: int
) -> BackdoorScan:
    import time

    from mlward.data.features import model_input

    torch = _torch()
    started = time.perf_counter()
    torch.manual_seed(seed)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    everything = model_input(sample)
    reference = train_twin(model, everything, torch.as_tensor(sample.y), seed + 1) if twin else None
    pick = np.random.default_rng(seed).permutation(len(sample))[:rows]
    inputs = everything[torch.as_tensor(pick)]
    # Images: one mask value per pixel, shared by the channels; tabular: one per feature.
    mask_shape = (1, *inputs.shape[2:]) if inputs.ndim == 4 else tuple(inputs.shape[1:])
    if inputs.ndim == 4:
        # Pixels share one scale: a trigger may take any value the image takes anywhere.
        low = everything.min()
        high = everything.max()
    else:
        # Tabular features each have their own scale (breast_cancer: 0.001 to 4,000): a
        # pattern on one range would let a vanishing mask push a small feature far outside
        # anything the data holds, and every class would have a "trigger" of mask 0.02.
        low = everything.min(dim=0).values
        high = everything.max(dim=0).values
    with torch.no_grad():
        classes = int(model(inputs[:1]).shape[1])
    found = []
    for label in range(classes):
        mask, pattern, success = _reverse(
            model, inputs, label, low, high, mask_shape, steps, weight, seed
        )
        twin_success = None
        if reference is not None:
            with torch.no_grad():
                stamped = (1 - mask) * inputs + mask * pattern
                twin_success = float((reference(stamped).argmax(dim=1) == label).float().mean())
        found.append((label, mask, pattern, success, twin_success))
    patches: dict[int, tuple[float, float | None, tuple[int, int, int]]] = {}
    inconclusive = None
    if inputs.ndim == 4:
        labels = torch.as_tensor(sample.y)

        def more_twins() -> list[Any]:
            return [
                train_twin(model, everything, labels, seed + 1 + extra)
                for extra in range(1, _TWINS)
            ]

        patches, inconclusive = _patch_evidence(
            model, reference, functools.cache(more_twins), inputs, classes, low, high
        )
    norms = np.array([float(f[1].sum()) for f in found])
    median = float(np.median(norms))
    mad = float(np.median(np.abs(norms - median))) * 1.4826 or 1e-12
    triggers = []
    for (label, mask, pattern, success, twin_success), norm in zip(found, norms, strict=True):
        index = (median - norm) / mad
        patch = patches.get(label)
        triggers.append(
            ClassTrigger(
                label,
                float(norm),
                success,
                float(index),
                twin_success,
                mask.expand_as(pattern).reshape(-1).double().numpy()
                if inputs.ndim == 4
                else mask.reshape(-1).double().numpy(),
                pattern.reshape(-1).double().numpy(),
                None if patch is None else patch[0],
                None if patch is None else patch[1],
                None if patch is None else patch[2],
            )
        )
    suspected: tuple[int, ...] = ()
    if inconclusive is None:
        by_patch = [
            t
            for t in sorted(triggers, key=lambda t: -(t.patch_success or 0.0))
            if t.patch_success is not None
            and t.patch_success >= _PATCH_SUCCESS
            and (t.patch_twin_success is None or t.patch_twin_success <= _MAX_TWIN_SUCCESS)
        ]
        by_mask = [
            t
            for t in sorted(triggers, key=lambda t: -t.anomaly_index)
            if t.anomaly_index > _ANOMALY_INDEX
            and t.attack_success >= _MIN_SUCCESS
            and (t.twin_success is None or t.twin_success <= _MAX_TWIN_SUCCESS)
        ]
        suspected = tuple(dict.fromkeys(t.label for t in [*by_patch, *by_mask]))
    return BackdoorScan(
        sample.source,
        tuple(triggers),
        suspected,
        sample.image_shape,
        time.perf_counter() - started,
        inconclusive,
    )


def _patch_evidence(
    model: Any,
    reference: Any,
    more_twins: Callable[[], list[Any]],
    inputs: Any,
    classes: int,
    low: Any,
    high: Any,
) -> tuple[dict[int, tuple[float, float | None, tuple[int, int, int]]], str | None]:
    """Per class, the best patch's success on the model and on the twin, and why the patches
    prove nothing when twins (clean by construction) have a universal patch of their own.

    One twin's universal patch may belong to its initialisation, not to the architecture (a
    CNN whose sample-trained twin is sent to "8" by a 3x3 patch, where three twins from other
    seeds are not): ``more_twins`` trains others, and most of them must have it too."""
    torch = _torch()
    rows = inputs[:_PATCH_ROWS]
    masks, places = _windows(int(inputs.shape[2]), int(inputs.shape[3]))
    found: dict[int, tuple[float, float | None, tuple[int, int, int]]] = {}
    for label in range(classes):
        success, where, stamped = patch_search(model, rows, label, low, high, masks)
        twin_success = None
        if reference is not None:
            with torch.no_grad():
                twin_success = float((reference(stamped).argmax(dim=1) == label).float().mean())
        found[label] = (success, twin_success, places[where])
    working = sorted(c for c, (s, _, _) in found.items() if s >= _PATCH_SUCCESS)
    if len(working) > 1:
        # A backdoor has one target (per trigger); patches that send the sample to several
        # classes are this model's general weakness, and any of them could hide a real one.
        return found, (
            f"a {found[working[0]][2][2]}-pixel-wide patch sends the sample to each of classes "
            f"{', '.join(map(str, working))}: the model has natural universal patches, so a "
            "patch trigger cannot be told from them"
        )
    if reference is None or not working:
        return found, None
    # Only worth knowing when a patch works on the model: is that a weakness of any model
    # built this way? Most likely classes first; the first universal patch settles it.
    for label in sorted(found, key=lambda c: -found[c][0]):
        success = patch_search(reference, rows, label, low, high, masks)[0]
        if success < _PATCH_SUCCESS:
            continue
        others = [patch_search(t, rows, label, low, high, masks)[0] for t in more_twins()]
        universal = 1 + sum(s >= _PATCH_SUCCESS for s in others)
        if 2 * universal > _TWINS:
            size = found[label][2][2]
            return found, (
                f"{universal} of {_TWINS} twins of this architecture, trained only on the clean "
                f"sample, are sent to class {label} by a {size}x{size} patch on most rows: a "
                "patch or a small trigger cannot be told from this architecture's natural "
                "weakness"
            )
    return found, None


def trigger_png(
    scan_result: BackdoorScan, label: int, path: str | os.PathLike[str], scale: int = 16
) -> None:
    """Save the recovered trigger (mask x pattern, and the mask beside it) as a PNG."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise InputError(
            f"saving a PNG needs Pillow ({exc})", fix="pip install 'mlward[data]'"
        ) from exc
    trigger = next(t for t in scan_result.classes if t.label == label)
    shape = scan_result.image_shape
    if shape is None:
        # Tabular: one row of cells, one per feature.
        shape = (1, trigger.mask.size)
    stamp = (trigger.mask * trigger.pattern).reshape(shape)
    mask = trigger.mask.reshape(shape)
    span = float(stamp.max() - stamp.min()) or 1.0
    left = (stamp - stamp.min()) / span
    picture = np.concatenate([left, np.ones((shape[0], 1, *shape[2:])), mask], axis=1)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[:, :, 0]
    pixels = (np.clip(picture, 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    try:
        image.save(os.fspath(path))
    except OSError as exc:
        raise InputError(
            f"cannot write {os.fspath(path)}: {exc}", fix="Pick a writable path."
        ) from exc
