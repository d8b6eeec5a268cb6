"""Default-deny trust decisions for the globals a pickle imports.

The allowlists (one TOML file per producer library, each entry with a reason) name exactly what
mainstream producers emit. Everything else is untrusted. The denylist does not decide trust; it
only raises an untrusted global to malicious and says why. An allowlist file may also hold
``[[unsafe]]`` tables: globals that a mainstream producer does emit but that were reviewed and
judged unsafe to call with arbitrary arguments. They stay untrusted; the table's reason only
tells the user why (instead of "not on any allowlist").
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from mlward.errors import PolicyError

_DUNDER_SAFE = frozenset({"__main__"})
# The globals torch::jit::Unpickler resolves natively when it reads a TorchScript archive.
_TORCHSCRIPT_PICKLE_FUNCTIONS = frozenset(
    {
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensor_from_id",
        "torch.jit._pickle.restore_type_tag",
    }
)


# Decision.category of an untrusted global that an allowlist file's [[unsafe]] table names.
REVIEWED_UNSAFE = "reviewed-unsafe"


class Trust(enum.Enum):
    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"
    DANGEROUS = "dangerous"


class Decision(NamedTuple):
    trust: Trust
    reason: str
    category: str | None = None
    source: str | None = None


class _Lists(NamedTuple):
    allowed: Mapping[str, tuple[str, str]]
    denied_names: Mapping[str, tuple[str, str]]
    denied_modules: Mapping[str, tuple[str, str]]
    # Reviewed and judged unsafe: name -> (reason, allowlist file). Never trusted.
    unsafe: Mapping[str, tuple[str, str]] = MappingProxyType({})


def _text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _read_toml(name: str, text: str) -> dict[str, object]:
    import tomllib  # only when regenerating the compiled lists: it costs start-up time

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(
            f"policy data file {name} is not valid TOML: {exc}",
            fix="Reinstall mlward; the packaged data files are damaged.",
        ) from exc


def _entries(
    document: Mapping[str, object], name: str, key: str = "entry"
) -> list[Mapping[str, object]]:
    entries = document.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PolicyError(
            f"{name}: expected [[{key}]] tables", fix="Reinstall mlward or fix the data file."
        )
    return entries


def _names(entry: Mapping[str, object], key: str, name: str) -> list[str]:
    values = entry.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PolicyError(
            f"{name}: '{key}' must be a list of strings",
            fix="Reinstall mlward or fix the data file.",
        )
    return values


def read_packaged_lists() -> _Lists:
    """Parse the packaged TOML files, the reviewed source of every entry."""
    allowed: dict[str, tuple[str, str]] = {}
    unsafe: dict[str, tuple[str, str]] = {}
    denied_names: dict[str, tuple[str, str]] = {}
    denied_modules: dict[str, tuple[str, str]] = {}
    package = os.path.dirname(__file__)
    folder = os.path.join(package, "allowlists")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".toml"):
            continue
        document = _read_toml(name, _text(os.path.join(folder, name)))
        for entry in _entries(document, name):
            reason = str(entry.get("reason", ""))
            for global_name in _names(entry, "names", name):
                allowed[global_name] = (reason, name.removesuffix(".toml"))
        for entry in _entries(document, name, key="unsafe"):
            reason = str(entry.get("reason", ""))
            for global_name in _names(entry, "names", name):
                unsafe[global_name] = (reason, name.removesuffix(".toml"))
    both = sorted(set(allowed) & set(unsafe))
    if both:
        raise PolicyError(
            f"allowed and reviewed as unsafe at once: {', '.join(both)}",
            fix="Reinstall mlward or fix the allowlist files.",
        )
    try:
        deny_text = _text(os.path.join(package, "denylist.toml"))
    except OSError as exc:
        raise PolicyError(
            f"cannot read the packaged denylist: {exc}", fix="Reinstall mlward."
        ) from exc
    document = _read_toml("denylist.toml", deny_text)
    for entry in _entries(document, "denylist.toml"):
        reason = str(entry.get("reason", ""))
        category = str(entry.get("category", "dangerous"))
        for global_name in _names(entry, "names", "denylist.toml"):
            denied_names[global_name] = (reason, category)
        for module in _names(entry, "modules", "denylist.toml"):
            denied_modules[module] = (reason, category)
    return _Lists(allowed, denied_names, denied_modules, unsafe)


COMPILED_MODULE = os.path.join(os.path.dirname(__file__), "_policy_data.py")


def compiled_lists_source(lists: _Lists) -> str:
    """The Python module that holds ``lists``: scans import it (its .pyc loads in well under a
    millisecond; parsing the TOML takes longer than scanning a small file)."""
    lines = [
        '"""GENERATED from allowlists/*.toml and denylist.toml by scripts/compile_policy_data.py;',
        'do not edit. tests/test_policy_data.py fails when it is out of date."""',
        "",
        "# ruff: noqa: E501",
    ]
    for field in ("allowed", "denied_names", "denied_modules", "unsafe"):
        mapping: Mapping[str, tuple[str, str]] = getattr(lists, field)
        table = sorted(set(mapping.values()))
        index = {value: number for number, value in enumerate(table)}
        lines.append(f"{field.upper()}_REASONS: tuple[tuple[str, str], ...] = (")
        lines += [f"    {value!r}," for value in table]
        lines.append(")")
        lines.append(f"{field.upper()}: dict[str, int] = {{")
        lines += [f"    {name!r}: {index[mapping[name]]}," for name in sorted(mapping)]
        lines.append("}")
    return "\n".join(lines) + "\n"


@functools.cache
def _packaged_lists() -> _Lists:
    try:
        from mlward.scanning import _policy_data as data
    except ImportError as exc:
        raise PolicyError(
            f"the compiled policy data is missing: {exc}",
            fix="Reinstall mlward, or run scripts/compile_policy_data.py in a source tree.",
        ) from exc
    return _Lists(
        {name: data.ALLOWED_REASONS[i] for name, i in data.ALLOWED.items()},
        {name: data.DENIED_NAMES_REASONS[i] for name, i in data.DENIED_NAMES.items()},
        {name: data.DENIED_MODULES_REASONS[i] for name, i in data.DENIED_MODULES.items()},
        {name: data.UNSAFE_REASONS[i] for name, i in data.UNSAFE.items()},
    )


class Policy:
    """Answers "may a pickle import this global?" for one scan."""

    def __init__(self, extra_allow: Iterable[str] = (), *, torchscript: bool = False) -> None:
        self._torchscript = torchscript
        self._lists = _packaged_lists()
        self._user_exact: frozenset[str] = frozenset(a for a in extra_allow if not a.endswith("*"))
        self._user_prefixes: tuple[str, ...] = tuple(
            a[:-1] for a in extra_allow if a.endswith(".*")
        )
        self._cache: dict[str, Decision] = {}

    def decide(self, module: str, name: str) -> Decision:
        full = f"{module}.{name}"
        decision = self._cache.get(full)
        if decision is None:
            decision = self._decide(module, name, full)
            self._cache[full] = decision
        return decision

    def _decide(self, module: str, name: str, full: str) -> Decision:
        if full in self._user_exact:
            return Decision(
                Trust.TRUSTED, "allowed by the user (--allow or policy file)", None, "user"
            )
        hit = self._denied(module, full) or self._denied_by_walk(module, name)
        if hit is not None:
            return hit
        allowed = self._lists.allowed.get(full)
        if allowed is not None:
            return Decision(Trust.TRUSTED, allowed[0], None, allowed[1])
        unsafe = self._lists.unsafe.get(full)
        if unsafe is not None:
            return Decision(Trust.UNTRUSTED, unsafe[0], REVIEWED_UNSAFE, unsafe[1])
        if self._torchscript and (module == "__torch__" or module.startswith("__torch__.")):
            return Decision(
                Trust.TRUSTED,
                "TorchScript class: torch.jit.load compiles it from the archive's code/ folder "
                "with the TorchScript compiler; no Python module is imported",
                None,
                "torchscript",
            )
        if self._torchscript and full in _TORCHSCRIPT_PICKLE_FUNCTIONS:
            return Decision(
                Trust.TRUSTED,
                "built into torch.jit's C++ unpickler (list and type-tag rebuilds)",
                None,
                "torchscript",
            )
        if _walks_dunders(module, name):
            return Decision(
                Trust.DANGEROUS,
                "walks through a dunder attribute to reach an object no model pickles by name",
                "introspection",
                "rule",
            )
        if any(full.startswith(prefix) for prefix in self._user_prefixes):
            return Decision(Trust.TRUSTED, "allowed by the user (--allow prefix)", None, "user")
        return Decision(Trust.UNTRUSTED, "not on any allowlist", None, None)

    def _denied(self, module: str, full: str) -> Decision | None:
        lists = self._lists
        hit = lists.denied_names.get(full)
        if hit is None:
            parts = module.split(".")
            for depth in range(len(parts), 0, -1):
                hit = lists.denied_modules.get(".".join(parts[:depth]))
                if hit is not None:
                    break
        if hit is None:
            return None
        return Decision(Trust.DANGEROUS, hit[0], hit[1], "denylist")

    def _denied_by_walk(self, module: str, name: str) -> Decision | None:
        # Protocol 4 walks a dotted name attribute by attribute, so "pathlib" + "os.system"
        # reaches os.system through a module that imports os: judge every tail of the walk.
        walk = name.split(".")
        for start in range(len(walk) - 1):
            tail_module = ".".join(walk[start:-1])
            hit = self._denied(tail_module, f"{tail_module}.{walk[-1]}")
            if hit is not None:
                return Decision(
                    Trust.DANGEROUS,
                    f"reaches {tail_module}.{walk[-1]} by walking attributes of {module}: "
                    f"{hit.reason}",
                    hit.category,
                    "denylist",
                )
        return None


def _walks_dunders(module: str, name: str) -> bool:
    # An attribute walk through dunders (``x.__globals__``, ``__subclasses__``) reaches objects
    # no producer ever pickles by reference.
    segments = [*module.split("."), *name.split(".")]
    return any(s.startswith("__") and s.endswith("__") and s not in _DUNDER_SAFE for s in segments)

