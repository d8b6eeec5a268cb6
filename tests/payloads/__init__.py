"""Hostile pickle-family samples, built in code, harmless, and each proven to run.

Every sample writes a model-like artifact whose payload, when the victim loads it with the named
loader, only creates the marker file it was given (a path in a temporary directory). Nothing is
downloaded, deleted or sent anywhere. ``tests/test_payloads_trigger.py`` proves each one really
runs with the real loader in a subprocess; ``tests/test_malicious_corpus.py`` checks the scanner
flags each one without running it.

Sample modules, one per family of trick:

- ``gadgets``     callables that run code, spawn processes, write files or import by name
- ``opcodes``     memo, opcode and implicit-call tricks that hide the callable from naive scanners
- ``streams``     several pickles in one stream, junk or broken opcodes after the payload
- ``containers``  torch zip / legacy / tar checkpoints, joblib (every codec), numpy .npy/.npz
- ``sleepy``      working models whose load also runs a payload that changes them
- ``advisories``  one sample per published scanner bypass (GHSA / CVE ids in ``advisory``)

Samples that need an optional library (dill, lz4) are only registered when it is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOADERS = ("pickle", "pickle-py", "torch", "joblib", "numpy")
VERDICTS = ("suspicious", "malicious")


@dataclass(frozen=True)
class Sample:
    name: str  # unique kebab-case id, e.g. "gadget-runpy-run-code"
    description: str  # what trick it uses and why a naive scanner misses it
    build: Callable[[Path, Path], Path]  # (out_dir, marker_path) -> artifact written in out_dir
    loader: str  # "pickle" | "pickle-py" | "torch" | "joblib" | "numpy" (see victim_source)
    expected: str  # minimum verdict: "malicious" (a denylisted callable) else "suspicious"
    advisory: str | None = None  # GHSA / CVE id or URL of the published bypass it reproduces
    setup: str | None = None  # python source the victim runs before loading; keep rare

    def __post_init__(self) -> None:
        if self.loader not in LOADERS:
            raise ValueError(f"{self.name}: unknown loader {self.loader!r}")
        if self.expected not in VERDICTS:
            raise ValueError(f"{self.name}: unknown expected verdict {self.expected!r}")


_VICTIMS = {
    # The victim reads pickles until the stream is exhausted, as code that stores several
    # objects in one file does (and as torch's legacy loader does).
    "pickle": (
        "import pickle\n"
        "with open(ARTIFACT, 'rb') as f:\n"
        "    while True:\n"
        "        try:\n"
        "            pickle.load(f)\n"
        "        except EOFError:\n"
        "            break\n"
    ),
    "pickle-py": (
        "import pickle\n"
        "with open(ARTIFACT, 'rb') as f:\n"
        "    while True:\n"
        "        try:\n"
        "            pickle._Unpickler(f).load()\n"
        "        except EOFError:\n"
        "            break\n"
    ),
    "torch": "import torch\ntorch.load(ARTIFACT, weights_only=False)\n",
    "joblib": "import joblib\njoblib.load(ARTIFACT)\n",
    "numpy": (
        "import numpy\n"
        "loaded = numpy.load(ARTIFACT, allow_pickle=True)\n"
        "if hasattr(loaded, 'files'):\n"
        "    for key in loaded.files:\n"
        "        loaded[key]\n"
    ),
}


def victim_source(sample: Sample, artifact: Path) -> str:
    """Python source for a fresh interpreter that loads ``artifact`` the way a victim would."""
    head = f"ARTIFACT = {str(artifact)!r}\n"
    setup = (sample.setup.rstrip() + "\n") if sample.setup else ""
    return head + setup + _VICTIMS[sample.loader]


def _collect() -> dict[str, tuple[Sample, ...]]:
    from . import advisories, containers, gadgets, opcodes, sleepy, streams

    groups = {
        "gadgets": gadgets.SAMPLES,
        "opcodes": opcodes.SAMPLES,
        "streams": streams.SAMPLES,
        "containers": containers.SAMPLES,
        "sleepy": sleepy.SAMPLES,
        "advisories": advisories.SAMPLES,
    }
    seen: set[str] = set()
    for samples in groups.values():
        for sample in samples:
            if sample.name in seen:
                raise ValueError(f"duplicate sample name {sample.name!r}")
            seen.add(sample.name)
    return {key: tuple(value) for key, value in groups.items()}


SAMPLES_BY_CATEGORY: dict[str, tuple[Sample, ...]] = _collect()
ALL_SAMPLES: tuple[Sample, ...] = tuple(
    sample for samples in SAMPLES_BY_CATEGORY.values() for sample in samples
)
SAMPLES_BY_NAME: dict[str, Sample] = {sample.name: sample for sample in ALL_SAMPLES}

__all__ = [
    "ALL_SAMPLES",
    "LOADERS",
    "SAMPLES_BY_CATEGORY",
    "SAMPLES_BY_NAME",
    "Sample",
    "victim_source",
]
