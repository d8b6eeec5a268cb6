"""Hash a model (a file or a folder) into a manifest: per file or per fixed-size shard, in parallel.

What is hashed follows the OMS reference, so both sides build the same manifest from the same
folder: every regular file under the root, hidden ones included; the root's git files
(``.git``, ``.gitattributes``, ``.github``, ``.gitignore``) and the given ignore paths are left
out; a symlink is an error unless allowed, and then a linked file is hashed by its content while
a linked folder is not entered; empty files have no shards. A file is opened once, checked with
``fstat`` before and after it is read, and opened with ``O_NOFOLLOW`` when symlinks are refused,
so a path swapped for a link between listing and reading is caught.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mlward.errors import OptionsError
from mlward.provenance.cache import DigestCache, FileIdentity, default_cache_path
from mlward.provenance.errors import HashingError, MissingExtraError
from mlward.provenance.manifest import (
    FILES,
    SHARDS,
    Manifest,
    Resource,
    Serialization,
    resource_name,
)

ALGORITHMS = ("sha256", "blake3")
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
# The reference's default shard size; also ours when sharding is asked for without a size.
DEFAULT_SHARD_SIZE = 1_000_000_000
_CHUNK = 1 << 20


@dataclass(frozen=True)
class HashingOptions:
    """How to hash a model. Signing and verifying must use the same algorithm and shard size;
    a verifier takes them from the bundle.

    ``shard_size`` 0 gives one digest per file; a positive size splits files into shards of that
    many bytes (SHA-256 only: BLAKE3 hashes one file on several cores by itself).
    ``ignore_paths`` are relative to the model folder. ``cache`` keeps digests of unchanged
    files between runs (``cache_path`` or the user cache folder); ``paranoid`` reads every byte
    again and only refreshes the cache.
    """

    algorithm: str = "sha256"
    shard_size: int = 0
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = ()
    ignore_git_paths: bool = True
    jobs: int = 0
    cache: bool = True
    cache_path: str | None = None
    paranoid: bool = False
    progress: Callable[[int, int, str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignore_paths", tuple(self.ignore_paths))
        if self.algorithm not in ALGORITHMS:
            raise OptionsError(
                f"hash algorithm {self.algorithm!r} is not supported",
                fix=f"Pass --hash-algorithm {' or '.join(ALGORITHMS)}.",
            )
        if self.shard_size < 0:
            raise OptionsError(
                f"shard size must be 0 (whole files) or positive, got {self.shard_size}",
                fix="Pass --shard-size 0, or a size in bytes.",
            )
        if self.shard_size and self.algorithm == "blake3":
            raise OptionsError(
                "BLAKE3 is not sharded: it already hashes one file on several cores",
                fix="Drop --shard-size, or use --hash-algorithm sha256.",
            )
        if self.jobs < 0:
            raise OptionsError(
                f"jobs must be 0 (automatic) or more, got {self.jobs}",
                fix="Pass --jobs 0 for automatic, or a number of threads.",
            )

    @classmethod
    def for_serialization(cls, serialization: Serialization, **overrides: Any) -> HashingOptions:
        """The options that redo a recorded serialization (what a verifier uses)."""
        if serialization.hash_type not in ALGORITHMS:
            raise OptionsError(
                f"the signature was made with {serialization.hash_type!r}, which mlward does "
                "not hash",
                fix=f"Re-sign the model with {' or '.join(ALGORITHMS)}.",
            )
        shard = serialization.shard_size if serialization.method == SHARDS else 0
        return cls(algorithm=serialization.hash_type, shard_size=shard or 0, **overrides)


class _Item(NamedTuple):
    """One file or shard to hash (a tuple: one per file on every run)."""

    name: str
    path: str
    start: int
    end: int
    identity: FileIdentity


def normalize_ignore_path(path: str) -> str:
    """A relative ignore path in POSIX form without ``./`` or a trailing slash."""
    parts = [p for p in path.replace(os.sep, "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def path_inside_model(model_path: str, other: str) -> str | None:
    """``other`` relative to the model folder (POSIX), or None when it lies outside it (a
    signature or provenance file written into the model it covers must be left out of it)."""
    if not os.path.isdir(model_path):
        return None
    root = os.path.realpath(model_path)
    target = os.path.realpath(other)
    if target != root and not target.startswith(root + os.sep):
        return None
    return normalize_ignore_path(os.path.relpath(target, root))


def _is_ignored(rel: str, ignored: Collection[str], heads: Collection[str]) -> bool:
    # ``heads`` (first components of the ignore paths) rejects most paths with one lookup.
    if rel.split("/", 1)[0] not in heads:
        return False
    return any(rel == ig or rel.startswith(ig + "/") for ig in ignored)


def _model_name(model_path: str) -> str:
    name = os.path.basename(os.path.normpath(model_path))
    if not name or name in (".", ".."):
        name = os.path.basename(os.path.realpath(model_path))
    return name


def _refuse_symlink(path: str) -> HashingError:
    return HashingError(
        f"{path} is a symbolic link; links are refused so a signature cannot cover content "
        "outside the model",
        fix="Replace the link with the file, or pass --allow-symlinks to hash what it points to.",
    )


def _special(path: str) -> HashingError:
    return HashingError(
        f"{path} is neither a regular file nor a folder (a socket, pipe, device or broken link)",
        fix="Remove it from the model folder, or list it with --ignore-paths.",
    )


def list_files(
    model_path: str, *, allow_symlinks: bool, ignored: Collection[str]
) -> list[tuple[str, str, os.stat_result]]:
    """(relative POSIX name, path, stat) of every file to hash, in no particular order."""
    if not os.path.lexists(model_path):
        raise HashingError(f"{model_path}: no such file or directory", fix="Check the model path.")
    if os.path.islink(model_path) and not allow_symlinks:
        raise _refuse_symlink(model_path)
    try:
        root_stat = os.stat(model_path)
    except OSError as exc:
        raise HashingError(
            f"cannot read {model_path}: {exc.strerror}", fix="Check the path."
        ) from exc
    if stat.S_ISREG(root_stat.st_mode):
        # A single-file model has one resource named "." (the path relative to itself).
        return [(".", model_path, root_stat)]
    if not stat.S_ISDIR(root_stat.st_mode):
        raise _special(model_path)
    found: list[tuple[str, str, os.stat_result]] = []
    heads = {ig.split("/", 1)[0] for ig in ignored}
    # (prefix, folder, whether an ignore path can match below it): only folders whose top
    # component starts an ignore path need the check, so most entries skip it.
    pending = [("", model_path, True)]
    while pending:
        prefix, folder, check = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise HashingError(
                f"cannot list {folder}: {exc.strerror}", fix="Check the folder's permissions."
            ) from exc
        for entry in entries:
            rel = prefix + entry.name
            if check and _is_ignored(rel, ignored, heads):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    found.append((rel, entry.path, entry.stat(follow_symlinks=False)))
                elif entry.is_dir(follow_symlinks=False):
                    below = check and (bool(prefix) or entry.name in heads)
                    pending.append((rel + "/", entry.path, below))
                elif entry.is_symlink():
                    if not allow_symlinks:
                        raise _refuse_symlink(entry.path)
                    try:
                        st = entry.stat()
                    except OSError:
                        raise _special(entry.path) from None
                    if stat.S_ISDIR(st.st_mode):
                        continue  # a linked folder is not entered (loops, escapes)
                    if not stat.S_ISREG(st.st_mode):
                        raise _special(entry.path)
                    found.append((rel, entry.path, st))
                else:
                    raise _special(entry.path)
            except OSError as exc:
                raise HashingError(
                    f"cannot read {entry.path}: {exc.strerror}", fix="Check its permissions."
                ) from exc
    return found


def _new_hasher(algorithm: str) -> Any:
    if algorithm == "sha256":
        return hashlib.sha256()
    try:
        import blake3
    except ImportError:
        raise MissingExtraError("BLAKE3 hashing", "blake3", "blake3") from None
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def _changed(path: str) -> HashingError:
    return HashingError(
        f"{path} changed while it was being hashed",
        fix="Hash the model when nothing is writing to it.",
    )


def _hash_item(item: _Item, algorithm: str, allow_symlinks: bool, buffer: bytearray) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    if not allow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(item.path, flags)
    except OSError as exc:
        if not allow_symlinks and os.path.islink(item.path):
            raise _refuse_symlink(item.path) from exc
        raise HashingError(f"cannot read {item.path}: {exc.strerror}", fix="Check it.") from exc
    try:
        before = os.fstat(fd)
        if FileIdentity.of(before) != item.identity:
            raise _changed(item.path)
        hasher = _new_hasher(algorithm)
        length = item.end - item.start
        if algorithm == "blake3" and length > _CHUNK:
            # One mapping lets BLAKE3 spread a large file over all cores.
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
                hasher.update(mapped)
        elif length <= len(buffer):
            data = os.pread(fd, length, item.start) if item.start else os.read(fd, length)
            if len(data) != length:
                raise _changed(item.path)
            hasher.update(data)
        else:
            view = memoryview(buffer)
            with open(fd, "rb", buffering=0, closefd=False) as handle:
                handle.seek(item.start)
                remaining = length
                while remaining:
                    n = handle.readinto(view[: min(remaining, len(buffer))])
                    if not n:
                        raise _changed(item.path)
                    hasher.update(view[:n])
                    remaining -= n
        if FileIdentity.of(os.fstat(fd)) != item.identity:
            raise _changed(item.path)
        digest: bytes = hasher.digest()
        return digest
    finally:
        os.close(fd)


# A file at least this big is worth a thread of its own.
_BIG_ITEM = 8 << 20


def _automatic_jobs(items: Sequence[_Item]) -> int:
    """One thread per core, or one per big file when there are more: a whole-file digest
    cannot be split, so 5 equal files on 2 cores take 3 rounds with 2 threads but 2.5 with 5
    (the kernel time-slices them; hashlib releases the GIL)."""
    big = sum(1 for item in items if item.end - item.start >= _BIG_ITEM)
    return max(1, min(max(os.cpu_count() or 1, big), 16))


def hash_model(
    model_path: str | os.PathLike[str],
    options: HashingOptions | None = None,
    *,
    extra_ignored: Sequence[str] = (),
    only: Collection[str] | None = None,
) -> Manifest:
    """Hash a model file or folder into a manifest.

    ``extra_ignored`` adds ignore paths that are recorded in the manifest like
    ``options.ignore_paths`` (the signature file inside the model, the git files). ``only``
    restricts hashing to these relative file paths (verifying with unsigned files ignored).
    """
    options = options or HashingOptions()
    path = os.fspath(model_path)
    ignored = {normalize_ignore_path(p) for p in (*options.ignore_paths, *extra_ignored)}
    if options.ignore_git_paths:
        ignored.update(GIT_PATHS)
    ignored.discard("")
    files = list_files(path, allow_symlinks=options.allow_symlinks, ignored=ignored)
    if only is not None:
        wanted = set(only)
        files = [f for f in files if f[0] in wanted]
    sharded = options.shard_size > 0
    serialization = Serialization(
        method=SHARDS if sharded else FILES,
        hash_type=options.algorithm,
        allow_symlinks=options.allow_symlinks,
        shard_size=options.shard_size if sharded else None,
        ignore_paths=tuple(sorted(ignored)),
    )
    items: list[_Item] = []
    for rel, file_path, st in files:
        identity = FileIdentity.of(st)
        if not sharded:
            items.append(_Item(rel, file_path, 0, st.st_size, identity))
            continue
        for start in range(0, st.st_size, options.shard_size):
            end = min(start + options.shard_size, st.st_size)
            items.append(_Item(resource_name(rel, start, end), file_path, start, end, identity))
    algorithm_label = serialization.resource_algorithm
    digests = _digests(path, items, options, algorithm_label)
    resources = tuple(Resource(item.name, algorithm_label, digests[item.name]) for item in items)
    return Manifest(_model_name(path), serialization, resources)


def _digests(
    model_path: str, items: list[_Item], options: HashingOptions, spec: str
) -> dict[str, bytes]:
    cache: DigestCache | None = None
    root = os.path.realpath(model_path)
    known: dict[str, tuple[tuple[int, ...], bytes]] = {}
    if options.cache and items:
        cache = DigestCache(options.cache_path or default_cache_path())
        if not options.paranoid:
            known = cache.load(root, spec)
    try:
        result: dict[str, bytes] = {}
        todo: list[_Item] = []
        for item in items:
            hit = known.get(item.name)
            if hit is not None and hit[0] == item.identity:
                result[item.name] = hit[1]
            else:
                todo.append(item)
        result.update(_hash_all(todo, options, len(items) - len(todo), len(items)))
        if cache is not None:
            cache.store(
                root,
                spec,
                ((item.name, item.identity, result[item.name]) for item in todo),
            )
        return result
    finally:
        if cache is not None:
            cache.close()


def _hash_all(
    items: list[_Item], options: HashingOptions, done_before: int, total: int
) -> dict[str, bytes]:
    if not items:
        return {}
    jobs = options.jobs or _automatic_jobs(items)
    progress = options.progress
    lock = threading.Lock()
    done = [done_before]

    def run(batch: list[_Item]) -> list[tuple[str, bytes]]:
        buffer = bytearray(_CHUNK)
        out = []
        for item in batch:
            out.append(
                (item.name, _hash_item(item, options.algorithm, options.allow_symlinks, buffer))
            )
            if progress is not None:
                with lock:
                    done[0] += 1
                    progress(done[0], total, item.name)
        return out

    if jobs == 1 or len(items) == 1:
        return dict(run(items))
    # Biggest first, dealt round-robin: a few large files spread over the threads, and many
    # small ones go in batches so one task is not one file.
    ordered = sorted(items, key=lambda i: i.end - i.start, reverse=True)
    count = min(len(ordered), jobs * 4)
    batches = [ordered[start::count] for start in range(count)]
    result: dict[str, bytes] = {}
    with ThreadPoolExecutor(jobs) as pool:
        for pairs in pool.map(run, batches):
            result.update(pairs)
    return result


def root_digest(model_path: str | os.PathLike[str], options: HashingOptions | None = None) -> str:
    """The model's OMS root digest (hex SHA-256), the identifier an ML-BOM or a lineage record
    names it by; equal to the subject digest of a signature made with the same options."""
    return hash_model(model_path, options).root_digest_hex


def file_digests(
    model_path: str | os.PathLike[str], options: HashingOptions | None = None
) -> dict[str, str]:
    """Relative POSIX path (or ``path:start:end`` shard) -> hex digest, for every resource."""
    return hash_model(model_path, options).digests()
