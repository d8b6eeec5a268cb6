"""A model's manifest: every file (or shard) paired with its digest, plus how it was hashed.

The canonical order and the root digest follow the OpenSSF Model Signing (OMS) v1.0 format, so
a manifest mlward builds and one the reference implementation builds compare equal and give the
same root digest: resources sorted by path components (then shard offsets), the root digest is
SHA-256 over the raw resource digests in that order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

FILES = "files"
SHARDS = "shards"


def resource_name(path: str, start: int | None = None, end: int | None = None) -> str:
    """The OMS resource name: the POSIX path, or ``path:start:end`` for a shard."""
    return path if start is None else f"{path}:{start}:{end}"


def _split_name(name: str, method: str) -> tuple[str, int, int]:
    if method != SHARDS:
        return name, 0, 0
    parts = name.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"shard resource name {name!r} is not path:start:end")
    return parts[0], int(parts[1]), int(parts[2])


def _sort_key(name: str, method: str) -> tuple[list[str], int, int]:
    # Path components, not the string: "a/b" sorts before "a-c" (as PurePosixPath does), which
    # is the order the reference hashes into the root digest.
    path, start, end = _split_name(name, method)
    if path == ".":
        return [], start, end
    return path.split("/"), start, end


class Resource(NamedTuple):
    """One file or shard: its OMS name, the algorithm label written with it, the raw digest.

    A named tuple rather than a dataclass: a model can have hundreds of thousands of them, and
    tuples are several times cheaper to build.
    """

    name: str
    algorithm: str
    digest: bytes

    @property
    def digest_hex(self) -> str:
        return self.digest.hex()


@dataclass(frozen=True)
class Serialization:
    """How the model was turned into resources; recorded in the bundle so a verifier can redo it."""

    method: str = FILES
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    shard_size: int | None = None
    ignore_paths: tuple[str, ...] = ()

    @property
    def resource_algorithm(self) -> str:
        """The label each resource carries: the reference marks shard digests with the size."""
        if self.method == SHARDS:
            return f"{self.hash_type}-sharded-{self.shard_size}"
        return self.hash_type

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "method": self.method,
            "hash_type": self.hash_type,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.method == SHARDS:
            document["shard_size"] = self.shard_size
        if self.ignore_paths:
            document["ignore_paths"] = list(self.ignore_paths)
        return document

    @classmethod
    def from_json(cls, document: object) -> Serialization:
        """Read the predicate's ``serialization``; ``ValueError`` says what is wrong."""
        if not isinstance(document, Mapping):
            raise ValueError("serialization is not an object")
        method = document.get("method")
        hash_type = document.get("hash_type")
        allow_symlinks = document.get("allow_symlinks")
        if method not in (FILES, SHARDS):
            raise ValueError(f"serialization method {method!r} is not files or shards")
        if not isinstance(hash_type, str) or not hash_type:
            raise ValueError("serialization hash_type is missing")
        if not isinstance(allow_symlinks, bool):
            raise ValueError("serialization allow_symlinks is not a boolean")
        shard_size: int | None = None
        if method == SHARDS:
            raw = document.get("shard_size")
            # The reference writes shard_size through a protobuf Struct, so it comes back as a
            # float (3.0); an integral float is the same size.
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
                raise ValueError(f"serialization shard_size {raw!r} is not a positive integer")
            shard_size = raw
        ignore = document.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise ValueError("serialization ignore_paths is not a list of strings")
        return cls(
            method=method,
            hash_type=hash_type,
            allow_symlinks=allow_symlinks,
            shard_size=shard_size,
            ignore_paths=tuple(ignore),
        )


@dataclass(frozen=True)
class Manifest:
    """A model name, how it was hashed, and its resources in canonical order."""

    model_name: str
    serialization: Serialization
    resources: tuple[Resource, ...] = field(default=())

    def __post_init__(self) -> None:
        method = self.serialization.method
        if method == FILES:
            # The common case, kept cheap: path components are the whole key.
            ordered = tuple(sorted(self.resources, key=lambda r: r.name.split("/")))
        else:
            ordered = tuple(sorted(self.resources, key=lambda r: _sort_key(r.name, method)))
        object.__setattr__(self, "resources", ordered)

    @property
    def root_digest(self) -> bytes:
        """SHA-256 over the resource digests in canonical order: the model's one identifier."""
        return root_digest_of(r.digest for r in self.resources)

    @property
    def root_digest_hex(self) -> str:
        return self.root_digest.hex()

    def digests(self) -> dict[str, str]:
        """Resource name -> hex digest (file paths, or ``path:start:end`` for shards)."""
        return {r.name: r.digest_hex for r in self.resources}

    def paths(self) -> frozenset[str]:
        """The file paths the manifest covers (shards folded into their file)."""
        method = self.serialization.method
        return frozenset(_split_name(r.name, method)[0] for r in self.resources)

    def by_path(self) -> dict[str, tuple[tuple[str, str, bytes], ...]]:
        """File path -> its (name, algorithm, digest) entries, for a per-file comparison."""
        if self.serialization.method == FILES:
            return {r.name: ((r.name, r.algorithm, r.digest),) for r in self.resources}
        grouped: dict[str, list[tuple[str, str, bytes]]] = {}
        for r in self.resources:
            path = _split_name(r.name, SHARDS)[0]
            grouped.setdefault(path, []).append((r.name, r.algorithm, r.digest))
        return {path: tuple(entries) for path, entries in grouped.items()}


def root_digest_of(digests: Iterable[bytes]) -> bytes:
    hasher = hashlib.sha256()
    for digest in digests:
        hasher.update(digest)
    return hasher.digest()


def check_resource_name(name: str, method: str) -> None:
    """``ValueError`` unless ``name`` is a valid resource name for the method."""
    _split_name(name, method)
