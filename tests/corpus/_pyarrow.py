"""pandas objects backed by pyarrow, as pandas pickles them with pyarrow installed.

Every pickled pyarrow *array* goes through ``pyarrow.lib._restore_array``, which builds the array
from the pickled buffers without validating them (see the ``[[unsafe]]`` table in
``src/mlward/scanning/allowlists/pyarrow.toml``). Those samples are genuine, but the scanner must
keep them SUSPICIOUS, name ``_restore_array`` and nothing else, and say why
(``UNSAFE_SAMPLES``). Pickles of pyarrow *types* alone (an ArrowDtype, ``df.dtypes``) import only
the reviewed type factories and must scan clean (``benign_samples``).
"""

from __future__ import annotations

import datetime
import decimal
import zoneinfo
from typing import Any

from . import BenignSample
from ._common import joblib_sample, pickle_sample

REQ = ("pandas", "pyarrow")
RESTORE_ARRAY = "pyarrow.lib._restore_array"


def _arrow_columns() -> Any:
    """One column per Arrow type family pandas users pick with pd.ArrowDtype."""
    import pandas as pd
    import pyarrow as pa

    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    columns = {
        "i64": ([1, None, 3], pa.int64()),
        "u8": ([1, 2, 3], pa.uint8()),
        "f64": ([0.5, None, 2.5], pa.float64()),
        "flag": ([True, None, False], pa.bool_()),
        "text": (["a", None, "c"], pa.string()),
        "large_text": (["a", "b", None], pa.large_string()),
        "raw": ([b"x", None, b"z"], pa.binary()),
        "fixed": ([b"ab", b"cd", None], pa.binary(2)),
        "day": ([datetime.date(2026, 1, 1), None, datetime.date(2026, 1, 3)], pa.date32()),
        "clock": ([datetime.time(1, 2), None, datetime.time(3, 4)], pa.time64("us")),
        "ts": ([datetime.datetime(2026, 1, 1), None, datetime.datetime(2026, 1, 2)],
               pa.timestamp("us")),
        "ts_tz": ([datetime.datetime(2026, 3, 28, tzinfo=berlin), None,
                   datetime.datetime(2026, 3, 29, tzinfo=berlin)],
                  pa.timestamp("ns", tz="Europe/Berlin")),
        "span": ([datetime.timedelta(seconds=1), None, datetime.timedelta(days=1)],
                 pa.duration("s")),
        "money": ([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50")],
                  pa.decimal128(7, 2)),
        "items": ([[1, 2], None, [3]], pa.list_(pa.int64())),
        "pair": ([[1, 2], [3, 4], None], pa.list_(pa.int8(), 2)),
        "long_items": ([[1], [], None], pa.large_list(pa.int32())),
        "record": ([{"a": 1, "b": "x"}, None, {"a": 3, "b": None}],
                   pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "mapping": ([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
        "coded": (["lo", "hi", "lo"], pa.dictionary(pa.int32(), pa.string())),
    }
    return pd.DataFrame(
        {
            name: pd.Series(pa.array(values, type=typ), dtype=pd.ArrowDtype(typ))
            for name, (values, typ) in columns.items()
        }
    )


def _default_strings() -> Any:
    """pandas 3 defaults: str columns, labels and categories are pyarrow-backed."""
    import pandas as pd

    return pd.DataFrame(
        {
            "name": ["alpha", "beta", None, "δ"],
            "color": pd.Categorical(["red", "blue", "red", "green"]),
            "n": [1, 2, 3, 4],
        },
        index=pd.Index(list("wxyz"), name="key"),
    )


def _string_pyarrow() -> Any:
    import pandas as pd

    return pd.Series(["a", None, "c"], dtype="string[pyarrow]", name="s")


def _arrow_index() -> Any:
    import pandas as pd

    return pd.Series([0.5, 1.5], index=pd.Index([10, 20], dtype="int64[pyarrow]"))


def _dtypes_only() -> Any:
    """ArrowDtype objects without data: a schema kept next to a model, ``df.dtypes``.

    Built with python string storage, so that the column labels of ``df.dtypes`` are not a
    pyarrow array themselves; the dtypes are pyarrow types all the same.
    """
    import pandas as pd

    with pd.option_context("mode.string_storage", "python"):
        frame = _arrow_columns()
        return {"dtypes": frame.dtypes, "schema": {c: frame[c].dtype for c in frame.columns},
                "str": pd.StringDtype("pyarrow")}


def benign_samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    for proto in (2, 5):
        out.append(pickle_sample(f"pyarrow_dtypes_p{proto}", _dtypes_only, proto, REQ))
    return out


def _unsafe(sample: BenignSample) -> BenignSample:
    return BenignSample(
        name=sample.name,
        build=sample.build,
        loader=sample.loader,
        requires=sample.requires,
        unsafe_globals=(RESTORE_ARRAY,),
    )


def unsafe_samples() -> list[BenignSample]:
    makers = {
        "arrow_columns": _arrow_columns,
        "default_strings": _default_strings,
        "string_pyarrow": _string_pyarrow,
        "arrow_index": _arrow_index,
    }
    out: list[BenignSample] = []
    for name, make in makers.items():
        for proto in (2, 5):
            out.append(_unsafe(pickle_sample(f"pyarrow_{name}_p{proto}", make, proto, REQ)))
    out.append(_unsafe(joblib_sample("pyarrow_default_strings_joblib", _default_strings, 3, REQ)))
    return out
