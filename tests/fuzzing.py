"""Differential fuzzing of the pickle analysis against CPython's own unpicklers.

Property: for any byte stream, every global that CPython's C unpickler or its pure-Python
unpickler passes to ``find_class`` while loading it is reported by mlward, and mlward never
raises. The reference unpicklers resolve a small set of harmless real builtins for real (so gadget
chains built from them behave as in life) and refuse every other name as a missing module would.

Used by tests/test_differential.py (CI) and bench/fuzz_differential.py (a million cases).
"""

from __future__ import annotations

import _compat_pickle
import _pickle
import collections
import io
import pickle
import random
import resource
import struct
import time
from collections.abc import Callable
from typing import Any

from mlward.options import Limits
from mlward.scanning.pickle_vm import _cap_memory, analyze_stream
from mlward.scanning.policy import Policy

SAFE_REAL: dict[tuple[str, str], Any] = {
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("collections", "OrderedDict"): collections.OrderedDict,
}
FAKE = [
    ("os", "system"),
    ("fake_module", "gadget"),
    ("pkg.sub", "Thing"),
    ("pkg", "Outer.Inner"),
    ("__builtin__", "eval"),
    ("copy_reg", "_reconstructor"),
    ("subprocess", "Popen"),
    ("módulo", "función"),
]
NAMES = list(SAFE_REAL) + FAKE


def _reference_find_class(seen: list[tuple[str, str]]) -> Callable[[str, str], Any]:
    def find_class(module: str, name: str) -> Any:
        seen.append((module, name))
        real = SAFE_REAL.get((module, name))
        if real is None:
            raise ImportError(f"no module named {module}")
        return real

    return find_class


class _RefC(_pickle.Unpickler):
    seen: list[tuple[str, str]]

    def find_class(self, module: str, name: str) -> Any:
        return _reference_find_class(self.seen)(module, name)


class _RefPy(pickle._Unpickler):  # type: ignore[name-defined,misc]
    seen: list[tuple[str, str]]

    def find_class(self, module: str, name: str) -> Any:
        return _reference_find_class(self.seen)(module, name)


def reference_globals(data: bytes) -> set[tuple[str, str]]:
    """Every (module, name) either CPython unpickler asks for while loading one pickle."""
    seen: set[tuple[str, str]] = set()
    for cls in (_RefC, _RefPy):
        unpickler = cls(io.BytesIO(data))
        unpickler.seen = []
        # The same cap the scanner uses: a mutated LONG_BINPUT index would otherwise make the
        # reference itself allocate tens of GB.
        restore = _cap_memory(256 << 20)
        try:
            unpickler.load()
        except Exception:
            pass
        finally:
            if restore is not None:
                resource.setrlimit(resource.RLIMIT_AS, restore)
        seen.update(unpickler.seen)
    return seen


def _names_of(module: str, name: str) -> set[tuple[str, str]]:
    out = {(module, name)}
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        out.add(_compat_pickle.NAME_MAPPING[key])
    elif module in _compat_pickle.IMPORT_MAPPING:
        out.add((_compat_pickle.IMPORT_MAPPING[module], name))
    return out


_POLICY: Policy | None = None


def mlward_globals(data: bytes) -> set[tuple[str, str]]:
    global _POLICY  # noqa: PLW0603 - one policy (and its cache) for the whole run
    if _POLICY is None:
        _POLICY = Policy()
    analysis = analyze_stream(
        data, _POLICY, Limits(), deadline=time.monotonic() + 60, max_pickles=1
    )
    reported: set[tuple[str, str]] = set()
    for seen in analysis.imports:
        reported.add((seen.module, seen.name))
        if seen.remapped_from:
            module, _, name = seen.remapped_from.partition(".")
            reported.add((module, name))
    return reported


def missed(data: bytes) -> set[tuple[str, str]]:
    """Globals a real unpickler resolves that mlward did not report (should be empty)."""
    expected = {n for n in reference_globals(data) if _importable_pair(n)}
    reported = mlward_globals(data)
    return {n for n in expected if not (_names_of(*n) & reported) and n not in reported}


def _importable_pair(pair: tuple[str, str]) -> bool:
    module, name = pair
    return all(p.isidentifier() for p in module.split(".")) and all(
        p.isidentifier() for p in name.split(".")
    )


# -- generation ---------------------------------------------------------------------------------


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.proto = rng.choice([0, 1, 2, 3, 4, 5])
        self.out = bytearray()
        self.depth = 0
        self.memo = 0

    def text(self) -> bool:
        return self.proto < 1

    def push_str(self, value: str) -> None:
        raw = value.encode()
        if self.proto >= 4 and len(raw) < 256 and self.rng.random() < 0.7:
            self.out += pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw
        elif self.proto >= 1:
            self.out += pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw
        else:
            self.out += pickle.UNICODE + value.encode("raw-unicode-escape") + b"\n"
        self.depth += 1
        self.maybe_memo()

    def maybe_memo(self) -> None:
        roll = self.rng.random()
        if roll < 0.25:
            if self.proto >= 4 and self.rng.random() < 0.5:
                self.out += pickle.MEMOIZE
            elif self.proto >= 1:
                self.out += pickle.BINPUT + bytes([self.memo % 256])
            else:
                self.out += pickle.PUT + str(self.memo).encode() + b"\n"
            self.memo += 1
        elif roll < 0.32 and self.memo:
            index = self.rng.randrange(self.memo)
            self.out += pickle.POP
            if self.proto >= 1:
                self.out += (
                    pickle.BINGET + bytes([index % 256])
                    if index < 256
                    else pickle.LONG_BINGET + struct.pack("<I", index)
                )
            else:
                self.out += pickle.GET + str(index).encode() + b"\n"
        elif roll < 0.36:
            self.out += pickle.DUP + pickle.POP

    def push_global(self) -> None:
        module, name = self.rng.choice(NAMES)
        if self.proto >= 4 and self.rng.random() < 0.7:
            self.push_str(module)
            self.push_str(name)
            self.out += pickle.STACK_GLOBAL
            self.depth -= 1
        else:
            self.out += pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n"
            self.depth += 1
        self.maybe_memo()

    def push_scalar(self) -> None:
        roll = self.rng.random()
        if roll < 0.3:
            value = self.rng.randrange(-5, 300)
            if self.proto >= 1 and 0 <= value < 256:
                self.out += pickle.BININT1 + bytes([value])
            else:
                self.out += pickle.INT + str(value).encode() + b"\n"
            self.depth += 1
        elif roll < 0.5:
            self.push_str(self.rng.choice(["a", "x", "os", "system", "ls", "k"]))
        elif roll < 0.6:
            self.out += pickle.NONE
            self.depth += 1
        elif roll < 0.75:
            self.out += pickle.EMPTY_LIST if self.proto >= 1 else pickle.MARK + pickle.LIST
            self.depth += 1
        elif roll < 0.9:
            self.out += pickle.EMPTY_DICT if self.proto >= 1 else pickle.MARK + pickle.DICT
            self.depth += 1
        else:
            self.out += pickle.EMPTY_TUPLE if self.proto >= 1 else pickle.MARK + pickle.TUPLE
            self.depth += 1

    def call(self) -> None:
        """callable, args tuple, REDUCE — or NEWOBJ / INST / OBJ / BUILD variants."""
        roll = self.rng.random()
        if roll < 0.55:
            self.push_global()
            self.out += pickle.MARK
            for _ in range(self.rng.randrange(3)):
                self.push_any(1)
                self.depth -= 1
            self.out += pickle.TUPLE
            self.out += pickle.REDUCE
        elif roll < 0.7 and self.proto >= 2:
            self.push_global()
            self.out += pickle.EMPTY_TUPLE + pickle.NEWOBJ
        elif roll < 0.8:
            module, name = self.rng.choice(NAMES)
            self.out += pickle.MARK
            self.out += pickle.INST + module.encode() + b"\n" + name.encode() + b"\n"
            self.depth += 1
        elif roll < 0.9 and self.proto >= 1:
            self.out += pickle.MARK
            self.push_global()
            self.depth -= 1
            self.out += pickle.OBJ
        else:
            self.push_global()
            self.push_any(1)
            self.out += pickle.BUILD
            self.depth -= 1
        self.maybe_memo()

    def push_any(self, level: int) -> None:
        roll = self.rng.random()
        if level < 3 and roll < 0.35:
            self.call()
        elif level < 3 and roll < 0.5:
            self.out += pickle.EMPTY_LIST if self.proto >= 1 else pickle.MARK + pickle.LIST
            self.out += pickle.MARK
            for _ in range(self.rng.randrange(3)):
                self.push_any(level + 1)
                self.depth -= 1
            self.out += pickle.APPENDS
            self.depth += 1
        elif level < 3 and roll < 0.6:
            self.out += pickle.EMPTY_DICT if self.proto >= 1 else pickle.MARK + pickle.DICT
            self.out += pickle.MARK
            for _ in range(self.rng.randrange(2)):
                self.push_scalar()
                self.push_any(level + 1)
                self.depth -= 2
            self.out += pickle.SETITEMS
            self.depth += 1
        else:
            self.push_scalar()

    def build(self) -> bytes:
        if self.proto >= 2:
            self.out += pickle.PROTO + bytes([self.proto])
        body_start = len(self.out)
        self.out += pickle.MARK
        for _ in range(self.rng.randrange(1, 5)):
            self.push_any(0)
        self.out += pickle.TUPLE if self.proto >= 1 or self.rng.random() < 0.5 else pickle.LIST
        self.out += pickle.STOP
        if self.proto >= 4 and self.rng.random() < 0.5:
            body = bytes(self.out[body_start:])
            self.out[body_start:] = pickle.FRAME + struct.pack("<Q", len(body)) + body
        return bytes(self.out)


_RISKY_OPS = [
    pickle.EXT1 + b"\x01",
    pickle.PERSID + b"x\n",
    pickle.BINPERSID,
    pickle.POP_MARK,
    pickle.REDUCE,
    pickle.BUILD,
    pickle.STOP,
    b"\xff",
    pickle.LONG_BINPUT + struct.pack("<I", 0x7FFF_FFF0),
    pickle.GLOBAL + b"os\nsystem\n",
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not buf:
            break
        roll = rng.random()
        at = rng.randrange(len(buf))
        if roll < 0.35:
            buf[at] = rng.randrange(256)
        elif roll < 0.55:
            del buf[at : at + rng.randrange(1, 4)]
        elif roll < 0.75:
            buf[at:at] = rng.choice(_RISKY_OPS)
        elif roll < 0.85:
            del buf[at:]
        else:
            end = min(len(buf), at + rng.randrange(1, 16))
            buf[at:at] = buf[at:end]
    return bytes(buf)


def case(seed: int) -> bytes:
    rng = random.Random(seed)
    data = _Gen(rng).build()
    if rng.random() < 0.5:
        data = mutate(data, rng)
    return data


def run(cases: int, start: int = 0) -> tuple[int, list[tuple[int, set[tuple[str, str]]]]]:
    """Run ``cases`` seeds; return (cases run, failures as (seed, missed names))."""
    failures: list[tuple[int, set[tuple[str, str]]]] = []
    for seed in range(start, start + cases):
        gap = missed(case(seed))
        if gap:
            failures.append((seed, gap))
    return cases, failures
