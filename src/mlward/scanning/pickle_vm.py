"""Drive CPython's own unpicklers over a stream with every name replaced by an inert stub.

No parser differential: the bytes are read by the very C unpickler ``pickle.load`` uses (and, when
that one stops on an error, also by the pure-Python ``pickle._Unpickler`` that joblib uses), so
every global a real loader would resolve passes through ``find_class`` here. ``find_class`` and
``persistent_load`` never import anything: they return stub classes. Calling a stub, building
one, or appending/setting items on one records an action and returns another stub. Nothing a
scanned file names is ever imported or called.
"""

from __future__ import annotations

import _compat_pickle
import _pickle
import codecs
import copyreg
import functools
import io
import os
import pickle
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar, NamedTuple

try:
    import resource
except ImportError:  # not on Windows: no address-space cap there
    resource = None  # type: ignore[assignment]

from mlward.options import Limits
from mlward.scanning.policy import Decision, Policy, Trust


@functools.lru_cache(maxsize=1 << 16)
def _importable(dotted: str) -> bool:
    """Could the import system resolve this name at all? (Unicode identifiers included.)"""
    return bool(dotted) and all(part.isidentifier() for part in dotted.split("."))


# Functions that unpickle bytes they are given: their argument is scanned as a pickle of its own.
NESTED_LOADERS = frozenset(
    {
        "pickle.loads",
        "pickle._loads",
        "_pickle.loads",
        "dill.loads",
        "dill._dill.loads",
        "cloudpickle.loads",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "torch.load",
        "torch.serialization.load",
        "torch.storage._load_from_bytes",
        "numpy.load",
        "numpy.lib.npyio.load",
        "numpy.loads",
    }
)

# Pure decoders the analysis may evaluate on literal arguments to find such nested bytes.
_DECODERS: dict[str, Callable[..., bytes]] = {}


def _register_decoders() -> None:
    import base64
    import binascii

    _DECODERS.update(
        {
            "base64.b64decode": base64.b64decode,
            "base64.standard_b64decode": base64.standard_b64decode,
            "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
            "base64.b32decode": base64.b32decode,
            "base64.b16decode": base64.b16decode,
            "base64.b85decode": base64.b85decode,
            "base64.a85decode": base64.a85decode,
            "binascii.a2b_base64": binascii.a2b_base64,
            "binascii.unhexlify": binascii.unhexlify,
            "binascii.a2b_hex": binascii.a2b_hex,
            "builtins.bytes.fromhex": bytes.fromhex,
            "_io.BytesIO": bytes,
            "io.BytesIO": bytes,
            "builtins.bytes": bytes,
            "builtins.bytearray": bytes,
        }
    )


_register_decoders()
# Results whose identity matters later: dtypes (joblib sizes arrays from them), decoded bytes
# (nested payloads) and joblib array wrappers.
_TEXT_ENCODERS = frozenset({"_codecs.encode", "codecs.encode"})
_SAFE_ENCODINGS = frozenset({"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"})
_KEEP_IDENTITY = frozenset(
    {
        *_DECODERS,
        *_TEXT_ENCODERS,
        *NESTED_LOADERS,
        "numpy.dtype",
        "joblib.numpy_pickle.NumpyArrayWrapper",
    }
)


_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


_CLOCK_EVERY = 64
_PERSISTENT_IDS_KEPT = 1  # the first shows what they look like; torch files have thousands
_ATTRIBUTE_LOOKUPS = frozenset({"builtins.getattr"})


class LimitReached(Exception):
    """A configured bound was hit; becomes an incomplete finding."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit
        self.detail = detail


class UnresolvableGlobal(Exception):
    """The real loader would fail to import this name, so the stream ends here for it too."""


class ImportSeen(NamedTuple):
    module: str
    name: str
    opcode: str
    offset: int
    pickle_index: int
    decision: Decision
    remapped_from: str | None = None

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


class _PendingLookup:
    __slots__ = (
        "dynamic_uses",
        "module",
        "name",
        "offset",
        "opcode",
        "pickle_index",
        "remapped_from",
        "static_uses",
    )

    def __init__(
        self,
        module: str,
        name: str,
        opcode: str,
        offset: int,
        pickle_index: int,
        remapped_from: str | None,
    ) -> None:
        self.module = module
        self.name = name
        self.opcode = opcode
        self.offset = offset
        self.pickle_index = pickle_index
        self.remapped_from = remapped_from
        self.static_uses = 0
        self.dynamic_uses = 0


class Action(NamedTuple):
    """Something the real loader would run: a call, an object creation or an implicit method."""

    kind: str  # call | new | setstate | append | extend | add | setitem | persistent-id | ext
    target: str
    trusted: bool
    detail: str
    offset: int
    pickle_index: int


class NestedPayload(NamedTuple):
    data: bytes
    offset: int
    pickle_index: int


class PickleSpan(NamedTuple):
    number: int  # which pickle of the stream (0 = the first)
    start: int
    end: int
    error: str | None
    engine: str


class StreamAnalysis:
    """Everything one stream's analysis saw, filled in as it reads."""

    __slots__ = (
        "actions",
        "ext_codes",
        "imports",
        "limit",
        "memory_limited",
        "nested",
        "spans",
        "trailing_bytes",
    )

    def __init__(self) -> None:
        self.imports: list[ImportSeen] = []
        self.actions: list[Action] = []
        self.nested: list[NestedPayload] = []
        self.spans: list[PickleSpan] = []
        self.limit: LimitReached | None = None
        self.trailing_bytes = 0
        self.ext_codes: list[tuple[int, int]] = []
        self.memory_limited = 0


def _summarise(value: Any, budget: int = 160) -> str:
    text = _render(value, 0)
    return text if len(text) <= budget else text[: budget - 1] + "…"


def _render(value: Any, depth: int) -> str:
    if isinstance(value, StubMeta):
        return value.mw_label
    if depth > 3:
        return "…"
    if isinstance(value, tuple):
        inner = ", ".join(_render(v, depth + 1) for v in value[:8])
        return f"({inner}{', …' if len(value) > 8 else ''})"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v, depth + 1) for v in value[:8]) + "]"
    if isinstance(value, dict):
        items = list(value.items())[:6]
        return (
            "{"
            + ", ".join(f"{_render(k, depth + 1)}: {_render(v, depth + 1)}" for k, v in items)
            + "}"
        )
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value[:48])) + ("…" if len(value) > 48 else "")
    return repr(value)[:120]


class StubMeta(type):
    """Metaclass of every stub. Stubs are classes so NEWOBJ, BUILD and calls all work on them."""

    mw_label: str
    mw_global: str | None
    mw_trusted: bool
    mw_call: tuple[str, tuple[Any, ...]] | None
    mw_state: Any
    mw_joblib_wrapper: bool
    mw_path: tuple[str, str] | None

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return _active().on_call(cls, "call", args, kwargs)

    def __setstate__(cls, state: Any) -> None:
        _active().on_setstate(cls, state)

    def append(cls, item: Any) -> None:
        _active().on_mutate(cls, "append", (item,))

    def extend(cls, items: Any) -> None:
        _active().on_mutate(cls, "extend", (items,))

    def add(cls, item: Any) -> None:
        _active().on_mutate(cls, "add", (item,))

    def __setitem__(cls, key: Any, value: Any) -> None:
        _active().on_mutate(cls, "setitem", (key, value))

    def __repr__(cls) -> str:
        return f"<stub {cls.mw_label}>"

    def __bool__(cls) -> bool:
        # The pure-Python BUILD skips a falsy state; a stub could be either, so take the branch
        # that lets loading go on (the analysis must see at least as far as any real loader).
        return False


def _stub_new(cls: StubMeta, *args: Any, **kwargs: Any) -> Any:
    return _active().on_call(cls, "new", args, kwargs)


_STUB_NEW = staticmethod(_stub_new)


_ACTIVE = threading.local()


def _active() -> _Session:
    session: _Session = _ACTIVE.session
    return session


class _Activated:
    """Stubs are shared between scans; calls on them reach the session analysing right now.

    A class rather than a generator-based context manager: it is entered once per stream, and
    the generator machinery cost more than analysing a small pickle."""

    __slots__ = ("previous", "session")

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.previous: _Session | None = None

    def __enter__(self) -> None:
        self.previous = getattr(_ACTIVE, "session", None)
        _ACTIVE.session = self.session

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.session = self.previous


_GLOBAL_STUBS: dict[tuple[str, str, bool], StubMeta] = {}
# Stub classes of finished analyses, reused by the next ones (see _Session.release).
_STUB_POOL: list[StubMeta] = []
_STUB_POOL_MAX = 8192


def _global_stub(module: str, name: str, trusted: bool) -> StubMeta:
    # One stub class per global per process: creating classes is the analysis' main cost on
    # small files, and a global's stub holds no per-scan state.
    key = (module, name, trusted)
    stub = _GLOBAL_STUBS.get(key)
    if stub is None:
        full = f"{module}.{name}"
        stub = _Session.make_stub(full, trusted=trusted, global_name=full)
        stub.mw_path = (module, name)
        if len(_GLOBAL_STUBS) < 50_000:
            _GLOBAL_STUBS[key] = stub
    return stub


class _Session:
    """State shared by the stubs and unpicklers while one stream is analysed."""

    def __init__(
        self,
        policy: Policy,
        limits: Limits,
        deadline: float,
        reader: BinaryIO,
        start: int,
        size: int,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.deadline = deadline
        self.reader = reader
        self.total = start + size  # absolute end of the stream in the reader
        self.base = -start  # offsets are reported relative to the stream's first byte
        self.result = StreamAnalysis()
        self.pickle_index = 0
        self.engine = "c"
        self._seen_imports: set[tuple[str, str, int]] = set()
        self._seen_actions: set[tuple[str, str, int]] = set()
        self.last_value: Any = None
        self.persistent_ids = 0
        self._lookups: dict[str, _PendingLookup] = {}
        self.shared_result = _SHARED_RESULT
        self._made: list[StubMeta] = []
        self._ticks = 0  # the first callback reads the clock
        self.describe_persistent_ids = True

    # -- helpers -------------------------------------------------------------------------------
    def _offset(self) -> int:
        return self.base + self.reader.tell()

    def _check(self) -> None:
        # Every callback passes here; reading the clock on each would cost more than the rest
        # of a typical callback, and 64 callbacks take microseconds.
        self._ticks -= 1
        if self._ticks <= 0:
            self._ticks = _CLOCK_EVERY
            if time.monotonic() > self.deadline:
                raise LimitReached("max_seconds", "time limit reached while reading a pickle")

    @staticmethod
    def make_stub(
        label: str,
        *,
        trusted: bool,
        global_name: str | None = None,
        call: tuple[str, tuple[Any, ...]] | None = None,
        joblib_wrapper: bool = False,
        owner: list[StubMeta] | None = None,
    ) -> StubMeta:
        """A stub class. With ``owner`` (a session's list), it lives only as long as that
        analysis, whose release() recycles it."""
        stub = _Session._new_stub(label, trusted, global_name, call, joblib_wrapper)
        if owner is not None:
            owner.append(stub)
        return stub

    @staticmethod
    def _new_stub(
        label: str,
        trusted: bool,
        global_name: str | None,
        call: tuple[str, tuple[Any, ...]] | None,
        joblib_wrapper: bool,
    ) -> StubMeta:
        if _STUB_POOL:
            try:
                stub = _STUB_POOL.pop()
            except IndexError:  # another thread took the last one
                pass
            else:
                stub.mw_label = label
                stub.mw_global = global_name
                stub.mw_trusted = trusted
                stub.mw_call = call
                stub.mw_joblib_wrapper = joblib_wrapper
                return stub
        return StubMeta(
            "Stub",
            (),
            {
                "__new__": _STUB_NEW,
                "mw_label": label,
                "mw_global": global_name,
                "mw_trusted": trusted,
                "mw_call": call,
                "mw_state": None,
                "mw_joblib_wrapper": joblib_wrapper,
                "mw_path": None,
            },
        )

    def release(self) -> None:
        """Return this analysis' stubs to the pool: creating a class costs more than the rest of
        a small file's analysis, and nothing outside the finished analysis refers to them (the
        result holds only names and rendered text)."""
        for stub in self._made:
            stub.mw_call = None  # drop references into the finished stream's objects
            stub.mw_state = None
        room = _STUB_POOL_MAX - len(_STUB_POOL)
        if room > 0:
            _STUB_POOL.extend(self._made[:room])
        self._made = []

    def record(self, kind: str, stub: StubMeta, detail: Any) -> None:
        """Note one action; ``detail`` (the arguments) is rendered only for the first of a kind."""
        key = (kind, stub.mw_label, self.pickle_index)
        if (
            stub.mw_trusted
            and stub.mw_global is None
            and kind in {"setstate", "setitem", "append", "extend", "add"}
        ):
            return  # implicit methods on objects from trusted constructors are their purpose
        if key in self._seen_actions:
            return
        self._seen_actions.add(key)
        self.result.actions.append(
            Action(
                kind=kind,
                target=stub.mw_label,
                trusted=stub.mw_trusted,
                detail=_summarise(detail),
                offset=self._offset(),
                pickle_index=self.pickle_index,
            )
        )

    # -- unpickler hooks -------------------------------------------------------------------------
    def find_class(
        self, module: str, name: str, opcode: str, remapped_from: str | None
    ) -> StubMeta:
        self._check()
        if not isinstance(module, str) or not isinstance(name, str):
            raise UnresolvableGlobal("global names must be strings")
        if not _importable(module) or not _importable(name):
            # The real import fails on such a name, so nothing runs and the loader stops here.
            raise UnresolvableGlobal(f"cannot import {module!r}.{name!r}")
        full = f"{module}.{name}"
        if full in _ATTRIBUTE_LOOKUPS:
            return self._lookup_stub(module, name, opcode, remapped_from)
        decision = self.policy.decide(module, name)
        key = (module, name, self.pickle_index)
        if key not in self._seen_imports:
            self._seen_imports.add(key)
            if len(self._seen_imports) > self.limits.max_globals:
                raise LimitReached("max_globals", "too many distinct globals in one stream")
            self.result.imports.append(
                ImportSeen(
                    module, name, opcode, self._offset(), self.pickle_index, decision, remapped_from
                )
            )
        return _global_stub(module, name, decision.trust is Trust.TRUSTED)

    # -- getattr(<global>, "constant") is a global too ------------------------------------------
    # Pickles of bound methods (pandas time zones, classmethod constructors) call
    # builtins.getattr(SomeClass, "name"). With a global and a constant name that is exactly the
    # global SomeClass.name, so it is judged as one; any other use of getattr is judged as itself.
    def _lookup_stub(
        self, module: str, name: str, opcode: str, remapped_from: str | None
    ) -> StubMeta:
        full = f"{module}.{name}"
        if full not in self._lookups:
            self._lookups[full] = _PendingLookup(
                module, name, opcode, self._offset(), self.pickle_index, remapped_from
            )
        return _global_stub(module, name, False)

    def _static_lookup(self, cls: StubMeta, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        pending = self._lookups.get(cls.mw_label)
        target = args[0] if args else None
        if (
            pending is not None
            and not kwargs
            and len(args) in (2, 3)
            and isinstance(target, StubMeta)
            and target.mw_path is not None
            and isinstance(args[1], str)
        ):
            pending.static_uses += 1
            module, qualname = target.mw_path
            return self.find_class(module, f"{qualname}.{args[1]}", "getattr", None)
        self._mark_dynamic(cls)
        return None

    def _mark_dynamic(self, cls: StubMeta) -> None:
        pending = self._lookups.get(cls.mw_label)
        if pending is not None:
            pending.dynamic_uses += 1

    def finish(self) -> None:
        """Record the attribute-lookup globals, judged by how the stream used them."""
        for full, pending in self._lookups.items():
            if pending.static_uses and not pending.dynamic_uses:
                decision = Decision(
                    Trust.TRUSTED,
                    "only looks up attributes of imported globals by constant name; each result "
                    "is judged as a global of its own",
                    None,
                    "rule",
                )
            else:
                decision = self.policy.decide(pending.module, pending.name)
            self.result.imports.append(
                ImportSeen(
                    pending.module,
                    pending.name,
                    pending.opcode,
                    pending.offset,
                    pending.pickle_index,
                    decision,
                    pending.remapped_from,
                )
            )
            del full
        self._lookups.clear()

    def persistent_load(self, pid: Any) -> StubMeta:
        self._check()
        self.persistent_ids += 1
        if self.describe_persistent_ids and self.persistent_ids <= _PERSISTENT_IDS_KEPT:
            self.result.actions.append(
                Action(
                    "persistent-id",
                    "persistent_load",
                    True,
                    _summarise(pid),
                    self._offset(),
                    self.pickle_index,
                )
            )
        return self.shared_result

    def on_call(
        self, cls: StubMeta, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StubMeta:
        self._check()
        if cls.mw_label in self._lookups:
            if kind == "call":
                resolved = self._static_lookup(cls, args, kwargs)
            else:
                self._mark_dynamic(cls)
                resolved = None
            if resolved is not None:
                return resolved  # type: ignore[no-any-return]
        detail = args if not kwargs else (*args, kwargs)
        if cls.mw_global is None and kind == "call":
            # Calling an object the stream itself created: no producer does that.
            self.record("call-result", cls, detail)
            trusted = False
        else:
            if not cls.mw_trusted:
                self.record(kind, cls, detail)
            trusted = cls.mw_trusted
        if cls.mw_global in NESTED_LOADERS:
            self._nested_from_args(cls.mw_global, args)
        if trusted and cls.mw_global not in _KEEP_IDENTITY:
            # Most results are never looked at again: share one stub instead of a class each.
            return self.shared_result
        return self.make_stub(
            f"{cls.mw_label}(…)",
            trusted=trusted,
            call=(cls.mw_label, args),
            joblib_wrapper=cls.mw_global == _JOBLIB_WRAPPER,
            owner=self._made,
        )

    def _nested_from_args(self, loader: str, args: tuple[Any, ...]) -> None:
        data = _literal_bytes(args[0]) if args else None
        if data is not None:
            self.result.nested.append(NestedPayload(data, self._offset(), self.pickle_index))
        else:
            # A loader fed bytes the analysis cannot see: what it loads is unknown.
            self.result.actions.append(
                Action(
                    "nested-opaque",
                    loader,
                    False,
                    _summarise(args),
                    self._offset(),
                    self.pickle_index,
                )
            )

    def on_setstate(self, cls: StubMeta, state: Any) -> None:
        self._check()
        self._mark_dynamic(cls)
        if cls.mw_global is not None:
            self.record("build-global", cls, state)
            return
        if cls.mw_joblib_wrapper:
            # The wrapper has no __setstate__: each BUILD merges into its __dict__, and joblib
            # reads one more array block per BUILD, even a second BUILD through the memo.
            merged = dict(cls.mw_state) if isinstance(cls.mw_state, dict) else {}
            if isinstance(state, dict):
                merged.update(state)
            cls.mw_state = merged
            self._skip_joblib_array(merged)
            return
        if cls.mw_call is not None:  # only identity-kept results (dtypes) are read back later
            cls.mw_state = state
        if not cls.mw_trusted:
            self.record("setstate", cls, state)

    def on_mutate(self, cls: StubMeta, kind: str, args: tuple[Any, ...]) -> None:
        self._check()
        self._mark_dynamic(cls)
        if cls.mw_global is not None:
            self.record(f"{kind}-global", cls, args)
        elif not cls.mw_trusted:
            self.record(kind, cls, args)

    # -- joblib arrays sit inline in the stream, right after their wrapper's BUILD -----------
    def _skip_joblib_array(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ValueError("joblib array wrapper state is not a dict")
        shape = state.get("shape", ())
        dtype = state.get("dtype")
        count = 1
        for dim in shape if isinstance(shape, tuple) else ():
            count *= int(dim)
        itemsize, has_object = _dtype_facts(dtype)
        reader = self.reader
        if has_object:
            if count == 0:
                return
            # The object array is a nested pickle read from the same file (joblib's inner
            # Unpickler); analyse it in place so its globals are reported.
            self.pickle_index += 1
            nested_index = self.pickle_index
            _run_one(self, reader, nested_index)
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = reader.read(1)
            if pad:
                reader.seek(pad[0], io.SEEK_CUR)
        nbytes = count * itemsize
        end = reader.tell() + nbytes
        if end > self.total:
            raise ValueError("joblib array data runs past the end of the stream")
        reader.seek(end)


_SHARED_RESULT = _Session.make_stub("<object built by a trusted constructor>", trusted=True)


def _dtype_facts(dtype: Any) -> tuple[int, bool]:
    """Item size and object-ness of a pickled numpy dtype, read from its stub without numpy."""
    if not isinstance(dtype, StubMeta) or dtype.mw_call is None:
        raise ValueError("joblib array wrapper has no dtype")
    args = dtype.mw_call[1]
    spec = args[0] if args else ""
    if isinstance(spec, bytes):
        spec = spec.decode("latin-1")
    if not isinstance(spec, str) or not spec:
        raise ValueError("unreadable dtype in joblib array wrapper")
    state = dtype.mw_state
    size, has_object = _spec_facts(spec)
    if isinstance(state, tuple) and len(state) >= 8:
        if isinstance(state[5], int) and state[5] > 0:
            size = state[5]
        if isinstance(state[7], int) and state[7] & 1:
            has_object = True
    if size <= 0 and not has_object:
        raise ValueError(f"cannot size dtype {spec!r}")
    return size, has_object


@functools.lru_cache(maxsize=256)
def _spec_facts(spec: str) -> tuple[int, bool]:
    # A joblib file repeats a handful of dtype strings ("f8", "i8", ...) once per array.
    digits = "".join(ch for ch in spec[1:] if ch.isdigit())
    return (int(digits) if digits else 0), spec[0] == "O"


def _literal_bytes(value: Any, depth: int = 0) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if depth > 4 or not isinstance(value, StubMeta) or value.mw_call is None:
        return None
    label, args = value.mw_call
    if label in _TEXT_ENCODERS and args and isinstance(args[0], str):
        # Protocol 0-2 pickles write bytes as _codecs.encode(text, "latin1").
        encoding = args[1] if len(args) > 1 and isinstance(args[1], str) else "utf-8"
        if encoding.lower().replace("_", "-") not in _SAFE_ENCODINGS:
            return None
        try:
            return args[0].encode(encoding)
        except (UnicodeError, LookupError):
            return None
    decoder = _DECODERS.get(label)
    if decoder is None or not args:
        if label == "codecs.decode" and len(args) >= 2 and isinstance(args[1], str):
            inner = _literal_bytes(args[0], depth + 1)
            if inner is not None and args[1].lower() in {
                "hex",
                "base64",
                "hex_codec",
                "base64_codec",
                "zlib",
                "zlib_codec",
            }:
                try:
                    decoded = codecs.decode(inner, args[1])
                except Exception:  # noqa: BLE001 - a failed decode just means no nested bytes
                    return None
                return decoded if isinstance(decoded, bytes) else None
        return None
    inner_arg: str | bytes
    if isinstance(args[0], str):
        inner_arg = (
            args[0] if label == "builtins.bytes.fromhex" else args[0].encode("latin-1", "replace")
        )
    else:
        inner = _literal_bytes(args[0], depth + 1)
        if inner is None:
            return None
        inner_arg = inner
    try:
        result = decoder(inner_arg)
    except Exception:  # noqa: BLE001 - a failed decode just means no nested bytes
        return None
    return bytes(result) if isinstance(result, (bytes, bytearray)) else None


def _remap(module: str, name: str) -> tuple[str, str, str | None]:
    # Protocol 0-2 pickles written by Python 2 name py2 modules; the loader maps them first.
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        new_module, new_name = _compat_pickle.NAME_MAPPING[key]
        return new_module, new_name, f"{module}.{name}"
    if module in _compat_pickle.IMPORT_MAPPING:
        return _compat_pickle.IMPORT_MAPPING[module], name, f"{module}.{name}"
    return module, name, None


class _CUnpickler(_pickle.Unpickler):
    session: _Session

    def find_class(self, module: str, name: str) -> Any:
        module, name, remapped = (
            _remap(module, name)
            if isinstance(module, str) and isinstance(name, str)
            else (module, name, None)
        )
        return self.session.find_class(module, name, "", remapped)

    def persistent_load(self, pid: Any) -> Any:
        return self.session.persistent_load(pid)


class _PyUnpickler(pickle._Unpickler):
    """The pure-Python unpickler joblib uses, with inert EXT handling."""

    session: _Session
    # Set by pickle._Unpickler.load(); declared for the type checker.
    append: Callable[[Any], None]
    read: Callable[[int], bytes]
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined,unused-ignore]

    def find_class(self, module: str, name: str) -> Any:
        module, name, remapped = (
            _remap(module, name)
            if isinstance(module, str) and isinstance(name, str)
            else (module, name, None)
        )
        return self.session.find_class(module, name, "", remapped)

    def persistent_load(self, pid: Any) -> Any:
        return self.session.persistent_load(pid)

    def _ext(self, code: int) -> None:
        session = self.session
        session.result.ext_codes.append((code, session._offset()))
        key = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
        if key is not None:
            self.append(self.find_class(*key))
            return
        # Unregistered here, but a loader that registered it would import something: stand in.
        self.append(
            session.make_stub(
                f"<extension code {code}>",
                trusted=False,
                global_name=f"<ext {code}>",
                owner=session._made,
            )
        )

    def load_ext1(self) -> None:
        self._ext(self.read(1)[0])

    def load_ext2(self) -> None:
        self._ext(struct.unpack("<H", self.read(2))[0])

    def load_ext4(self) -> None:
        self._ext(struct.unpack("<i", self.read(4))[0])

    dispatch[pickle.EXT1[0]] = load_ext1
    dispatch[pickle.EXT2[0]] = load_ext2
    dispatch[pickle.EXT4[0]] = load_ext4


_STATM: list[int] = [-1, -1]  # (pid, descriptor of /proc/self/statm opened by that process)


def _address_space_bytes() -> int:
    # One descriptor per process, re-read with pread: opening and closing the file for every
    # pickle cost more than analysing a small one. A forked worker opens its own, because
    # /proc/self resolves to the process that opened it.
    pid = os.getpid()
    if _STATM[0] != pid:
        _STATM[1] = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        _STATM[0] = pid
    return int(os.pread(_STATM[1], 64, 0).split()[0]) * _PAGE_SIZE


_PAGE_SIZE = resource.getpagesize() if resource is not None else 4096


def _cap_memory(extra: int) -> tuple[int, int] | None:
    """Cap the address space for the unpickler about to run, so memo bombs raise MemoryError;
    returns the limits to restore afterwards (None when nothing was changed)."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        current = _address_space_bytes()
    except (OSError, ValueError, IndexError):
        return None
    cap = current + extra
    if soft != resource.RLIM_INFINITY and soft <= cap:
        return None
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return soft, hard


def _run_one(session: _Session, reader: BinaryIO, index: int) -> PickleSpan:
    # Honest unpickling needs memory in proportion to the input; only bombs need more.
    budget = min(
        session.limits.max_memory_bytes, max(256 << 20, 32 * (session.total + session.base))
    )
    restore = _cap_memory(budget)
    try:
        return _run_one_unguarded(session, reader, index)
    finally:
        if restore is not None and resource is not None:
            resource.setrlimit(resource.RLIMIT_AS, restore)


def _run_one_unguarded(session: _Session, reader: BinaryIO, index: int) -> PickleSpan:
    """Read one pickle from ``reader``'s position with the C engine, then Python on error."""
    start = reader.tell()
    previous_index = session.pickle_index
    session.pickle_index = index
    error: str | None = None
    engine = "c"
    try:
        # torch.load reads py2 strings as UTF-8 and pickle.load as ASCII; surrogateescape never
        # fails, so the analysis reads on wherever either loader would.
        unpickler = _CUnpickler(reader, encoding="utf-8", errors="surrogateescape")
        unpickler.session = session
        session.last_value = unpickler.load()
    except LimitReached:
        raise
    except RecursionError:
        error = "nesting too deep"
    except MemoryError:
        # The memory cap stopped the C engine (a memo index far beyond the data is the usual
        # cause); the pure-Python engine keeps its memo in a dict and reads on.
        error = "MemoryError: memory limit reached"
        session.result.memory_limited += 1
    except Exception as exc:  # noqa: BLE001 - any loader error ends this pickle
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        c_end = reader.tell()
        # The pure-Python loader (joblib's) may get further than the C one; union both views.
        reader.seek(start)
        engine = "c+python"
        py_error: str | None = None
        try:
            py = _PyUnpickler(reader, encoding="utf-8", errors="surrogateescape")
            py.session = session
            session.last_value = py.load()
        except LimitReached:
            raise
        except RecursionError:
            py_error = "nesting too deep"
        except Exception as exc:  # noqa: BLE001
            py_error = f"{type(exc).__name__}: {exc}"
        if py_error is None:
            error = None
        else:
            reader.seek(max(c_end, reader.tell()))
    session.pickle_index = max(previous_index, session.pickle_index, index)
    return PickleSpan(index, session.base + start, session.base + reader.tell(), error, engine)


def analyze_stream(
    data: bytes,
    policy: Policy,
    limits: Limits,
    *,
    deadline: float,
    max_pickles: int | None = None,
) -> StreamAnalysis:
    """Analyse every pickle in ``data`` back to back, as repeated ``pickle.load`` calls see them."""
    return analyze_reader(
        io.BytesIO(data), 0, len(data), policy, limits, deadline=deadline, max_pickles=max_pickles
    )


def analyze_reader(
    reader: BinaryIO,
    start: int,
    size: int,
    policy: Policy,
    limits: Limits,
    *,
    deadline: float,
    max_pickles: int | None = None,
    persistent_ids_expected: bool = False,
) -> StreamAnalysis:
    """Like analyze_stream, over ``size`` bytes of a seekable reader positioned at ``start``.

    With ``persistent_ids_expected`` (torch's own pickles), persistent ids are counted but not
    described: they are how every tensor is stored, and nothing reports them."""
    session = _Session(policy, limits, deadline, reader, start, size)
    session.describe_persistent_ids = not persistent_ids_expected
    try:
        with _Activated(session):
            _analyze_all(session, reader, start, size, max_pickles)
        session.finish()
    finally:
        session.release()
    return session.result


def _analyze_all(
    session: _Session, reader: BinaryIO, start: int, size: int, max_pickles: int | None
) -> None:
    total = start + size
    index = 0
    try:
        while reader.tell() < total:
            if max_pickles is not None and index >= max_pickles:
                break
            before_imports = len(session.result.imports)
            before_actions = len(session.result.actions)
            span = _run_one(session, reader, index)
            saw_something = (
                len(session.result.imports) > before_imports
                or len(session.result.actions) > before_actions
            )
            if span.error is not None and index > 0 and not saw_something:
                # Bytes after the last pickle that are not a pickle: the loader never reads them.
                session.result.trailing_bytes = size - span.start
                break
            session.result.spans.append(span)
            if span.error is not None:
                break
            index = session.pickle_index + 1
            session.pickle_index = index
            if reader.tell() <= span.start + start:
                break
    except LimitReached as exc:
        session.result.limit = exc


def analyze_records(
    data: bytes,
    policy: Policy,
    limits: Limits,
    *,
    deadline: float,
    kind: str,
    element_sizes: dict[str, int],
) -> StreamAnalysis:
    """Legacy torch tar members: counts and records as small pickles, raw bytes in between."""
    reader = io.BytesIO(data)
    session = _Session(policy, limits, deadline, reader, 0, len(data))
    index = 0

    def load() -> Any:
        nonlocal index
        span = _run_one(session, reader, index)
        session.result.spans.append(span)
        index = session.pickle_index + 1
        session.pickle_index = index
        if span.error is not None:
            raise _StreamBroken
        value = session.last_value
        session.last_value = None
        return value

    try:
        with _Activated(session):
            _read_records(load, reader, session, kind, element_sizes)
        session.finish()
    finally:
        session.last_value = None
        session.release()
    return session.result


def _read_records(
    load: Callable[[], Any],
    reader: BinaryIO,
    session: _Session,
    kind: str,
    element_sizes: dict[str, int],
) -> None:
    try:
        count = load()
        if not isinstance(count, int) or count < 0:
            raise _StreamBroken
        for _ in range(count):
            record = load()
            if not isinstance(record, tuple) or len(record) != 3:
                raise _StreamBroken
            if kind == "storages":
                type_name = record[2].mw_label if isinstance(record[2], StubMeta) else ""
                size = element_sizes.get(type_name.rsplit(".", 1)[-1])
                raw = reader.read(8)
                if size is None or len(raw) < 8:
                    raise _StreamBroken
                reader.seek(struct.unpack("<q", raw)[0] * size, io.SEEK_CUR)
            else:
                raw = reader.read(8)
                if len(raw) < 8:
                    raise _StreamBroken
                ndim = struct.unpack_from("<i", raw)[0]
                reader.seek(16 * ndim + 8, io.SEEK_CUR)
        if kind == "storages":
            load()
    except _StreamBroken:
        pass
    except LimitReached as exc:
        session.result.limit = exc


class _StreamBroken(Exception):
    pass
