"""Helpers shared by the renderers: evidence normalisation and location wording."""

from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlward.results import Location

Scalar: TypeAlias = str | int | float | bool | None
EvidenceValue: TypeAlias = Scalar | list[Scalar]


def _is_json_scalar(value: object) -> TypeGuard[Scalar]:
    # NaN and infinities are not JSON; they fall back to repr like any other odd value.
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int))


def normalise_value(value: object) -> EvidenceValue:
    """Keep scalars and flat lists of scalars; anything else becomes its repr."""
    if _is_json_scalar(value):
        return value
    if isinstance(value, (list, tuple)):
        return [item if _is_json_scalar(item) else repr(item) for item in value]
    return repr(value)


def normalise_evidence(evidence: Mapping[str, Any]) -> dict[str, EvidenceValue]:
    """Evidence as JSON-safe data, keys sorted so output does not depend on insertion order."""
    return {str(key): normalise_value(evidence[key]) for key in sorted(evidence, key=str)}


# Cc: control (ANSI escapes), Cf: format (bidi overrides, zero-width), Cs: lone surrogates from
# undecodable file names, Zl/Zp: line breaks. Names come from hostile files, so none reach a
# terminal raw.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_BYTE_RANGE = 0x100


def safe_text(text: str) -> str:
    """Escape characters that could move the cursor, recolour or reorder a terminal line."""
    if all(unicodedata.category(ch) not in _UNSAFE_CATEGORIES for ch in text):
        return text
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < _BYTE_RANGE else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def describe_location(location: Location) -> str:
    """Where inside the file, in words; empty when the finding is about the whole file."""
    parts: list[str] = []
    if location.member is not None:
        parts.append(f"member {location.member}")
    if location.offset is not None:
        parts.append(f"offset {location.offset}")
    if location.pickle_index is not None and location.opcode is not None:
        parts.append(f"pickle #{location.pickle_index}, {location.opcode}")
    elif location.pickle_index is not None:
        parts.append(f"pickle #{location.pickle_index}")
    elif location.opcode is not None:
        parts.append(f"opcode {location.opcode}")
    return ", ".join(parts)
