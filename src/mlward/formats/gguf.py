"""GGUF (llama.cpp models): a header, typed metadata, tensor descriptions, then tensor data.

The header is validated against the file (counts, lengths, types, offsets), and the chat template
in ``tokenizer.chat_template`` — a Jinja template that runtimes render — is checked for the
constructs that escape Jinja's sandbox (dunder attribute walks, the cycler/joiner/namespace
gadgets, imports). Nothing is rendered.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

from mlward.storage.blobs import Blob

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 32
_TEMPLATE_KEYS = ("tokenizer.chat_template",)
# Attributes that turn a template into code: the dunder walks (cycler.__init__.__globals__,
# ''.__class__.__mro__...). Using cycler, joiner or namespace is ordinary (chat templates keep
# state in a namespace); walking from them to dunders is the gadget, and that is what is flagged.
_DANGEROUS_ATTRS = re.compile(
    r"^(__\w*|mro|func_globals|f_globals|gi_frame|cr_frame|tb_frame|f_back|co_code)$"
)
# Dunder names are also built from pieces ('__cla' ~ 'ss__'): any string with "__" counts.
_DUNDER_TEXT = re.compile(r"__")
_DANGEROUS_NAMES = frozenset(
    {"config", "request", "os", "sys", "subprocess", "builtins", "__builtins__", "eval", "exec"}
)


class GgufError(ValueError):
    pass


@dataclass
class GgufInfo:
    """What the header and metadata of a GGUF file say, and what is wrong with them."""

    version: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


class _Reader:
    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.pos = 0
        self._buffer = b""
        self._buffer_at = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > self.blob.size:
            raise GgufError(f"field at byte {self.pos} runs past the end of the file")
        end = self.pos + size
        if not (self._buffer_at <= self.pos and end <= self._buffer_at + len(self._buffer)):
            self._buffer_at = self.pos
            self._buffer = self.blob.read(self.pos, max(size, 1 << 20))
        start = self.pos - self._buffer_at
        self.pos = end
        return self._buffer[start : start + size]

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]


def read(blob: Blob, max_items: int = 50_000_000) -> GgufInfo:
    reader = _Reader(blob)
    if reader.take(4) != MAGIC:
        raise GgufError("not a GGUF file")
    version = reader.unpack("<I")
    if version not in (1, 2, 3):
        raise GgufError(f"unknown GGUF version {version}")
    count_fmt = "<I" if version == 1 else "<Q"
    tensor_count = reader.unpack(count_fmt)
    kv_count = reader.unpack(count_fmt)
    if tensor_count > _MAX_COUNT or kv_count > _MAX_COUNT:
        raise GgufError(f"implausible counts: {tensor_count} tensors, {kv_count} metadata keys")
    info = GgufInfo(version, tensor_count)
    budget = [max_items]

    def string() -> str:
        length = reader.unpack(count_fmt)
        return reader.take(length).decode("utf-8", "replace")

    def value(kind: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise GgufError("too many metadata values")
        if kind in _SCALARS:
            return reader.unpack(_SCALARS[kind])
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            item_kind = reader.unpack("<I")
            count = reader.unpack(count_fmt)
            if count > reader.blob.size:
                raise GgufError(f"array of {count} items cannot fit in the file")
            if item_kind in _SCALARS:
                size = struct.calcsize(_SCALARS[item_kind])
                reader.take(size * count)  # numbers are skipped, not kept
                return f"<{count} values>"
            return [value(item_kind) for _ in range(count)][:16]
        raise GgufError(f"unknown metadata type {kind}")

    for _ in range(kv_count):
        key = string()
        kind = reader.unpack("<I")
        item = value(kind)
        info.metadata[key] = item
        # Named templates live under tokenizer.chat_template.<name>.
        is_template = key in _TEMPLATE_KEYS or key.startswith("tokenizer.chat_template.")
        if is_template and isinstance(item, str):
            info.templates[key] = item
    alignment = info.metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        info.problems.append(f"general.alignment {alignment!r} is not a power of two")
        alignment = 32
    ends: list[int] = []
    for _ in range(tensor_count):
        name = string()
        dims = reader.unpack("<I")
        if dims > 8:
            raise GgufError(f"tensor {name!r} has {dims} dimensions")
        for _ in range(dims):
            reader.unpack(count_fmt)
        reader.unpack("<I")  # ggml type
        offset = reader.unpack("<Q")
        ends.append(offset)
    data_start = -(-reader.pos // alignment) * alignment
    if ends and data_start + max(ends) > blob.size:
        info.problems.append("a tensor offset points past the end of the file")
    return info


def template_risks(template: str) -> list[str]:
    """Constructs in a Jinja template that reach Python objects beyond the data passed in."""
    try:
        from jinja2 import nodes
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:  # no Jinja: a plain text check still catches the published gadgets
        found = re.finditer(r"__\w*", template)
        return sorted({f"uses {m.group(0)!r}" for m in found})
    environment = SandboxedEnvironment()
    try:
        tree = environment.parse(template)
    except Exception as exc:  # noqa: BLE001 - any template syntax error
        return [f"does not parse as Jinja: {exc}"]
    risks: list[str] = []
    kinds = (
        nodes.Getattr,
        nodes.Getitem,
        nodes.Name,
        nodes.Const,
        nodes.Import,
        nodes.FromImport,
        nodes.Include,
        nodes.Extends,
    )
    for node in tree.find_all(kinds):
        if isinstance(node, nodes.Const):
            # Dunder names spelled as strings: |attr('__class__'), ['__globals__'], 'x'|format.
            if isinstance(node.value, str) and _DUNDER_TEXT.search(node.value):
                risks.append(f"spells {node.value[:40]!r}")
        elif isinstance(node, nodes.Getattr) and _DANGEROUS_ATTRS.match(node.attr):
            risks.append(f"reads attribute {node.attr!r}")
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and _DANGEROUS_ATTRS.match(node.arg.value)
        ):
            risks.append(f"reads item {node.arg.value!r}")
        elif isinstance(node, nodes.Name) and node.name in _DANGEROUS_NAMES and node.ctx == "load":
            risks.append(f"uses {node.name!r}")
        elif isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            risks.append(f"loads another template ({type(node).__name__.lower()})")
    return sorted(set(risks))
