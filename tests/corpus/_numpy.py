"""NumPy arrays, scalars and random state, pickled and written as .npy / .npz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import BenignSample
from ._common import SEED, pickle_sample

REQ = ("numpy",)


def _arrays() -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    base = rng.standard_normal((3, 4))
    out: dict[str, Any] = {}
    for dt in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "longdouble",
        "complex64",
        "complex128",
        "clongdouble",
    ):
        # zeros + assignment: long double padding bytes stay zero, so builds are reproducible
        arr = np.zeros(base.shape, dtype=dt)
        arr[...] = base * 10
        out[dt] = _zero_padding(arr)
    out["unicode"] = np.array(["alpha", "beta", "γ"], dtype="U5")
    out["bytes"] = np.array([b"ab", b"cde"], dtype="S3")
    out["datetime64"] = np.array(["2026-01-01", "2026-11-27T18:38"], dtype="datetime64[s]")
    out["timedelta64"] = np.array([1, 2, 3], dtype="timedelta64[ms]")
    out["void"] = np.array([b"\x00\x01\x02"], dtype="V3")
    out["structured"] = np.array(
        [(1, 2.5, b"x"), (2, -1.0, b"y")], dtype=[("id", "<i4"), ("score", ">f8"), ("tag", "S1")]
    )
    out["nested_structured"] = np.zeros(2, dtype=[("pos", "f4", (3,)), ("meta", [("a", "u1")])])
    out["big_endian"] = np.arange(5, dtype=">i8")
    out["fortran"] = np.asfortranarray(base)
    out["noncontiguous"] = base[:, ::2]
    out["transposed"] = base.T
    out["zero_d"] = np.array(3.5)
    out["empty"] = np.empty((0, 3), dtype="f4")
    out["object"] = np.array([1, "two", 3.0, None, (4, 5), [6], {"k": 7}], dtype=object)
    return out


def _zero_padding(arr: Any) -> Any:
    """Zero the unused bytes of x87 80-bit long doubles (they hold stack garbage otherwise)."""
    import numpy as np

    if arr.dtype.kind not in "fc" or arr.dtype.itemsize < 12:
        return arr
    if np.finfo(np.longdouble).nmant != 63:  # not x87 extended precision: no padding
        return arr
    part = np.dtype(np.longdouble).itemsize
    raw = arr.view(np.uint8).reshape(-1, part)
    raw[:, 10:] = 0
    return arr


def _scalars() -> dict[str, Any]:
    import numpy as np

    return {
        "f64": np.float64(0.25),
        "f32": np.float32(1.5),
        "f16": np.float16(2.0),
        "i64": np.int64(-3),
        "u8": np.uint8(200),
        "bool": np.bool_(True),
        "c128": np.complex128(1 + 2j),
        "str": np.str_("hi"),
        "bytes": np.bytes_(b"by"),
        "dt": np.datetime64("2026-11-27"),
        "td": np.timedelta64(5, "D"),
        "dtype_f4": np.dtype("f4"),
        "dtype_struct": np.dtype([("a", "<i2"), ("b", "U3")]),
        "dtype_dt": np.dtype("M8[ns]"),
        "type_float64": np.float64,
        "type_int32": np.int32,
        "type_bool": np.bool_,
    }


def _masked() -> Any:
    import numpy as np

    data = np.arange(6, dtype="f8").reshape(2, 3)
    return np.ma.masked_array(data, mask=[[0, 1, 0], [1, 0, 0]], fill_value=-1.0)


def _matrix_and_records() -> dict[str, Any]:
    import numpy as np

    return {
        "matrix": np.matrix([[1, 2], [3, 4]]),
        "recarray": np.rec.fromrecords([(1, "a"), (2, "b")], names="n,s"),
        "record": np.rec.fromrecords([(1, "a")], names="n,s")[0],
    }


def _random_state() -> dict[str, Any]:
    import numpy as np

    gen = np.random.default_rng(SEED)
    gen.standard_normal(3)
    return {
        "generator_pcg64": gen,
        "generator_philox": np.random.Generator(np.random.Philox(SEED)),
        "generator_sfc64": np.random.Generator(np.random.SFC64(SEED)),
        "generator_mt19937": np.random.Generator(np.random.MT19937(SEED)),
        "pcg64dxsm": np.random.PCG64DXSM(SEED),
        "bitgen_pcg64": np.random.PCG64(SEED),
        "random_state": np.random.RandomState(SEED),
        "seed_sequence": np.random.SeedSequence(SEED),
        "legacy_state_tuple": np.random.RandomState(SEED).get_state(),
    }


def _npy(name: str, make: Any, allow_pickle: bool = False) -> BenignSample:
    def build(out_dir: Path) -> Path:
        import numpy as np

        path = out_dir / f"{name}.npy"
        np.save(path, make(), allow_pickle=allow_pickle)
        return path

    return BenignSample(name=name, build=build, loader="numpy", requires=REQ)


def _npz(name: str, make: Any, compressed: bool) -> BenignSample:
    def build(out_dir: Path) -> Path:
        import numpy as np

        path = out_dir / f"{name}.npz"
        (np.savez_compressed if compressed else np.savez)(path, **make())
        return path

    return BenignSample(name=name, build=build, loader="numpy", requires=REQ)


def samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    for proto in range(6):
        out.append(pickle_sample(f"numpy_arrays_p{proto}", _arrays, proto, REQ))
    for proto in (0, 2, 4, 5):
        out.append(pickle_sample(f"numpy_scalars_p{proto}", _scalars, proto, REQ))
    out.append(pickle_sample("numpy_masked_p2", _masked, 2, REQ))
    out.append(pickle_sample("numpy_masked_p5", _masked, 5, REQ))
    out.append(pickle_sample("numpy_matrix_records_p5", _matrix_and_records, 5, REQ))
    out.append(pickle_sample("numpy_random_state_p2", _random_state, 2, REQ))
    out.append(pickle_sample("numpy_random_state_p5", _random_state, 5, REQ))
    out.append(
        pickle_sample("numpy_object_array_p4", lambda: _arrays()["object"], 4, REQ)
    )
    # .npy: plain dtypes need no pickle; object arrays embed one.
    for key in ("float32", "int64", "complex128", "bool", "structured", "datetime64", "fortran",
                "unicode", "nested_structured"):
        out.append(_npy(f"numpy_npy_{key}", lambda key=key: _arrays()[key]))
    out.append(_npy("numpy_npy_object", lambda: _arrays()["object"], allow_pickle=True))
    plain = lambda: {k: v for k, v in _arrays().items() if k != "object"}  # noqa: E731
    out.append(_npz("numpy_npz", plain, compressed=False))
    out.append(_npz("numpy_npz_compressed", plain, compressed=True))

    def with_object() -> dict[str, Any]:
        arrays = _arrays()
        return {"weights": arrays["float32"], "meta": arrays["object"]}

    out.append(_npz("numpy_npz_object", with_object, compressed=False))
    out.append(_npz("numpy_npz_compressed_object", with_object, compressed=True))
    return out
