"""pandas DataFrames and Series of every common kind, as pickle.dumps / to_pickle write them.

They are built with ``pd.options.mode.string_storage = "python"``: strings (values, labels,
categories) then live in NumPy object arrays, as they always do without pyarrow, so these samples
are the same with and without pyarrow installed. With pyarrow and the default storage, pandas 3
pickles strings as pyarrow arrays through ``pyarrow.lib._restore_array``, which was reviewed as
unsafe to load; ``_pyarrow.py`` covers those pickles (they must stay suspicious).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import BenignSample
from ._common import SEED, joblib_sample, pickle_sample

REQ = ("pandas",)


def _numeric() -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(SEED)
    return pd.DataFrame(
        {
            "f64": rng.normal(size=5),
            "f32": rng.normal(size=5).astype("float32"),
            "i64": np.arange(5),
            "u8": np.arange(5, dtype="uint8"),
            "flag": [True, False, True, True, False],
        },
        index=pd.Index(list("abcde"), name="key"),
    )


def _categorical() -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "color": pd.Categorical(["red", "blue", "red", "green"]),
            "size": pd.Categorical(["S", "L", "M", "S"], categories=["S", "M", "L"], ordered=True),
            "code": pd.Series([1, 2, 1, 3], dtype="category"),
        }
    )


def _datetimes() -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "naive": pd.date_range("2026-01-01", periods=4, freq="D"),
            "utc": pd.date_range("2026-01-01", periods=4, freq="h", tz="UTC"),
            "berlin": pd.date_range("2026-03-28", periods=4, freq="12h", tz="Europe/Berlin"),
            "fixed": pd.date_range(
                "2026-01-01", periods=4, freq="min", tz=zoneinfo.ZoneInfo("America/Lima")
            ),
            "delta": pd.to_timedelta([1, 2, 3, 4], unit="s"),
            "period": pd.period_range("2026-01", periods=4, freq="M"),
        },
        index=pd.date_range("2026-01-01", periods=4, freq="W", name="week"),
    )


def _strings() -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "default_str": ["alpha", "beta", None, "δ"],
            "object": pd.Series(["x", 1, None, 2.5], dtype=object),
            "string_dtype": pd.Series(["a", None, "c", "d"], dtype="string"),
        }
    )


def _nullable_and_misc() -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    return {
        "int64_na": pd.Series([1, None, 3], dtype="Int64"),
        "boolean": pd.Series([True, None, False], dtype="boolean"),
        "float64_na": pd.Series([1.5, None, 2.0], dtype="Float64"),
        "interval": pd.Series(pd.interval_range(0, 3)),
        "sparse": pd.Series(pd.arrays.SparseArray([0, 0, 1, 0])),
        "multiindex": pd.DataFrame(
            {"v": [1, 2, 3, 4]},
            index=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["l1", "l2"]),
        ),
        "range_index": pd.Series(np.arange(3.0)),
        "timestamp": pd.Timestamp("2026-11-27 18:38", tz="UTC"),
        "timedelta": pd.Timedelta("1 days 2 hours"),
        "period": pd.Period("2026Q4"),
        "nat": pd.NaT,
        "na": pd.NA,
        "offset": pd.offsets.BusinessDay(2),
        "dateoffset": pd.DateOffset(months=1),
    }


def _series() -> Any:
    import pandas as pd

    return pd.Series([0.5, 1.5, 2.5], index=["x", "y", "z"], name="score")


def _python_strings(make: Callable[[], Any]) -> Callable[[], Any]:
    """``make`` run with pandas' python (NumPy object) string storage."""

    def made() -> Any:
        import pandas as pd

        with pd.option_context("mode.string_storage", "python"):
            return make()

    return made


def _to_pickle(name: str, make: Any, compression: str | None) -> BenignSample:
    def build(out_dir: Path) -> Path:
        path = out_dir / f"{name}.pkl"
        make().to_pickle(path, compression=compression)
        return path

    return BenignSample(name=name, build=build, loader="pickle", requires=REQ)


def samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    makers = {
        name: _python_strings(make)
        for name, make in {
            "numeric": _numeric,
            "categorical": _categorical,
            "datetimes": _datetimes,
            "strings": _strings,
            "nullable_misc": _nullable_and_misc,
            "series": _series,
        }.items()
    }
    for name, make in makers.items():
        for proto in (2, 5):
            out.append(pickle_sample(f"pandas_{name}_p{proto}", make, proto, REQ))
    out.append(pickle_sample("pandas_numeric_p0", makers["numeric"], 0, REQ))
    out.append(_to_pickle("pandas_to_pickle", makers["datetimes"], None))
    out.append(joblib_sample("pandas_joblib", makers["categorical"], 3, REQ))
    return out
