"""Plain Python and standard-library values, as checkpoints and configs carry them."""

from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import fractions
import types
import uuid
from typing import Any

from . import BenignSample
from ._common import pickle_sample


def _containers() -> dict[str, Any]:
    dd_list: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
    dd_list["a"].extend([1, 2, 3])
    dd_int: collections.defaultdict[str, int] = collections.defaultdict(int)
    dd_int["b"] += 2
    return {
        "ordered": collections.OrderedDict([("w", 1.5), ("b", -2), ("name", "layer")]),
        "dd_list": dd_list,
        "dd_int": dd_int,
        "dd_dict": collections.defaultdict(dict, {"x": {"y": 1}}),
        "dd_set": collections.defaultdict(set, {"x": {1, 2}}),
        "counter": collections.Counter("abracadabra"),
        "deque": collections.deque([1, 2, 3], maxlen=5),
        "deque_unbounded": collections.deque(["x", "y"]),
        "chainmap": collections.ChainMap({"a": 1}, {"b": 2}),
    }


def _scalars() -> dict[str, Any]:
    return {
        "none": None,
        "true": True,
        "int": 7,
        "big_int": 2**100,
        "neg": -(2**40),
        "float": 0.1,
        "nan": float("nan"),
        "inf": float("-inf"),
        "complex": complex(1.5, -2.0),
        "str": "héllo wörld",
        "bytes": b"\x00\x01binary\xff",
        "bytearray": bytearray(b"mutable\x00"),
        "set": {1, 2, 3},
        "frozenset": frozenset({4, 5}),  # ints: set order does not depend on PYTHONHASHSEED
        "range": range(0, 10, 3),
        "slice": slice(1, None, 2),
        "tuple": (1, (2, (3,))),
        "list": [1, [2, [3]]],
        "ellipsis_free_nested": {"k": [{"v": (1.0, "s")}]},
    }


def _temporal() -> dict[str, Any]:
    return {
        "datetime": datetime.datetime(2026, 11, 27, 18, 38, 5, 123456),
        "datetime_utc": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "datetime_offset": datetime.datetime(
            2026, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=-5), "EST")
        ),
        "date": datetime.date(2026, 11, 27),
        "time": datetime.time(12, 30, 15, 250),
        "time_tz": datetime.time(12, 30, tzinfo=datetime.UTC),
        "timedelta": datetime.timedelta(days=3, seconds=4, microseconds=5),
    }


def _numbers() -> dict[str, Any]:
    return {
        "decimal": decimal.Decimal("3.14159265358979323846"),
        "decimal_nan": decimal.Decimal("NaN"),
        "fraction": fractions.Fraction(355, 113),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "uuid_safe": uuid.UUID(int=42, is_safe=uuid.SafeUUID.safe),
    }


def _namespaces() -> dict[str, Any]:
    return {
        "args": argparse.Namespace(lr=0.01, epochs=3, arch="resnet", layers=[1, 2]),
        "simple": types.SimpleNamespace(seed=1234, tags=("a", "b")),
    }


def _kitchen_sink() -> dict[str, Any]:
    return {
        "containers": _containers(),
        "scalars": _scalars(),
        "temporal": _temporal(),
        "numbers": _numbers(),
        "namespaces": _namespaces(),
    }


def samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    for proto in range(6):
        out.append(pickle_sample(f"stdlib_kitchen_sink_p{proto}", _kitchen_sink, proto))
    groups = {
        "containers": _containers,
        "scalars": _scalars,
        "temporal": _temporal,
        "numbers": _numbers,
        "namespaces": _namespaces,
    }
    for group, make in groups.items():
        for proto in (2, 5):
            out.append(pickle_sample(f"stdlib_{group}_p{proto}", make, proto))
    # A pickle whose top level is a defaultdict(list): the factory is the global builtins.list.
    def defaultdict_top() -> Any:
        d: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
        d["k"].append(1)
        return d

    out.append(pickle_sample("stdlib_defaultdict_list_p0", defaultdict_top, 0))
    out.append(pickle_sample("stdlib_defaultdict_list_p4", defaultdict_top, 4))
    # Protocol-0 bytes and bytearray go through _codecs.encode / builtins.bytearray.
    out.append(pickle_sample("stdlib_bytes_p0", lambda: [b"abc\x00\xff", bytearray(b"\x01")], 0))
    out.append(pickle_sample("stdlib_bytes_p3", lambda: [b"abc\x00\xff", bytearray(b"\x01")], 3))
    return out
