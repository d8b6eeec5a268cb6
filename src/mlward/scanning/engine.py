"""Detect each artifact's formats by content, open containers, and run the checks per format."""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import time
from typing import TYPE_CHECKING

from mlward.errors import InputError
from mlward.formats import (
    compressed,
    gguf,
    keras,
    npy,
    safetensors,
    sevenzip,
)
from mlward.formats import zip as zipfmt
from mlward.options import ScanOptions
from mlward.results import (
    ArtifactResult,
    Finding,
    Location,
    MemberResult,
    Severity,
    Verdict,
    verdict_of,
)
from mlward.scanning.collect import Collected, codec_missing, incomplete, limit_reached
from mlward.scanning.pickle_checks import findings_for_stream
from mlward.scanning.pickle_vm import StreamAnalysis, analyze_reader
from mlward.scanning.policy import Policy
from mlward.storage import remote
from mlward.storage.blobs import Blob, BlobFile, BytesBlob, FileBlob, SliceBlob

if TYPE_CHECKING:
    from mlward.scanning import format_checks

class _LazyFormatChecks:
    """format_checks, imported on first use: ONNX, TensorFlow, GGUF and Keras checks are rare
    in a scan of pickles, and importing them is a large part of start-up time."""

    def __getattr__(self, name: str) -> object:
        from mlward.scanning import format_checks as module

        return getattr(module, name)


if not TYPE_CHECKING:
    format_checks = _LazyFormatChecks()

_HEAD = 4096
_READ_WHOLE = 4 << 20
# pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2): the first pickle of every legacy torch file.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_TORCHSCRIPT_CONSTANTS = re.compile(r"^[^/]+/constants\.pkl$")
_TORCH_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
# Protocol 0/1 pickles start with one of these opcodes; anything else cannot be a pickle.
_PICKLE_START = frozenset(
    b"(.0123FGIJKLMNPSTUVX]abcdeghijklmopqrstu}\x80\x81\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98)"
)
# Text has no control characters but tab, newline, carriage return (and form feed, escape);
# protobufs (ONNX, TensorFlow) are full of them, while still being valid UTF-8.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_RECOGNISED_UNSUPPORTED = ((b"Rar!\x1a\x07", "rar"),)
# Element sizes of legacy torch storage types, to step over raw data in legacy tar checkpoints.
_STORAGE_ELEMENT_SIZE = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}


def _artifact(
    path: str, formats: list[str], collected: Collected, size: int, started: float
) -> ArtifactResult:
    return ArtifactResult(
        path=path,
        formats=tuple(formats),
        verdict=verdict_of(collected.findings),
        findings=tuple(collected.findings),
        imports=tuple(collected.imports),
        members=tuple(collected.members),
        size=size,
        duration_s=time.perf_counter() - started,
    )


class Scanner:
    """Scans one artifact at a time; holds the policy so repeated scans share its cache."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.limits = options.limits
        self.policy = Policy(options.allow)
        # torch.load hands archives with a constants.pkl to torch.jit.load, whose C++ unpickler
        # resolves __torch__.* from the archive's own TorchScript code instead of importing.
        self.torchscript_policy = Policy(options.allow, torchscript=True)
        # Decompression budget of the artifact being scanned: nested bombs share one total.
        self._inflated_left = self.limits.max_decompressed_bytes

    # -- entry points --------------------------------------------------------------------------
    def scan_file(self, path: str) -> ArtifactResult:
        started = time.perf_counter()
        self._inflated_left = self.limits.max_decompressed_bytes
        collected = Collected()
        formats: list[str] = []
        size = 0
        try:
            # Linked files are read (model caches such as Hugging Face's are made of links);
            # the finding below says where the bytes came from.
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            collected.findings.append(
                incomplete(
                    path,
                    None,
                    "MW900",
                    "Cannot read file",
                    f"cannot open: {exc.strerror}",
                    "Check the path and its permissions.",
                )
            )
        else:
            try:
                info = os.fstat(fd)
                size = info.st_size
                if os.path.islink(path):
                    collected.findings.append(
                        Finding(
                            "MW904",
                            "Symbolic link",
                            Severity.INFO,
                            f"{path} is a link to {os.path.realpath(path)}; that file was scanned.",
                            Location(path),
                            evidence={"target": os.path.realpath(path)},
                        )
                    )
                if stat.S_ISDIR(info.st_mode):
                    collected.findings.append(
                        incomplete(
                            path,
                            None,
                            "MW901",
                            "Linked folder not entered",
                            "a link to a folder; its contents were not scanned",
                            "Scan the folder it points to, or pass --follow-symlinks.",
                        )
                    )
                elif not stat.S_ISREG(info.st_mode):
                    collected.findings.append(
                        incomplete(
                            path,
                            None,
                            "MW901",
                            "Not a regular file",
                            "not a regular file; nothing was read",
                            "Pass regular files or directories.",
                        )
                    )
                elif size > self.limits.max_file_bytes:
                    collected.findings.append(
                        limit_reached(
                            path,
                            None,
                            "max_file_bytes",
                            f"{size} bytes exceed the file limit of {self.limits.max_file_bytes}",
                        )
                    )
                else:
                    deadline = time.monotonic() + self.limits.max_seconds
                    file_blob = FileBlob(fd, size)
                    # Small files are read whole once: their formats read many small pieces.
                    blob: Blob = (
                        BytesBlob(file_blob.read(0, size)) if size <= _READ_WHOLE else file_blob
                    )
                    formats = self._scan_top(blob, path, collected, deadline)
            finally:
                os.close(fd)
        return _artifact(path, formats, collected, size, started)

    def scan_path(self, path: str) -> ArtifactResult:
        """A local file, or a remote object when ``path`` is a URL (s3://, hf://, ...)."""
        if not remote.is_url(path):
            return self.scan_file(path)
        started = time.perf_counter()
        self._inflated_left = self.limits.max_decompressed_bytes
        collected = Collected()
        formats: list[str] = []
        size = 0
        try:
            with remote.open_blob(path) as blob:
                size = blob.size
                if size > self.limits.max_file_bytes:
                    detail = f"{size} bytes exceed the file limit of {self.limits.max_file_bytes}"
                    collected.findings.append(limit_reached(path, None, "max_file_bytes", detail))
                else:
                    deadline = time.monotonic() + self.limits.max_seconds
                    formats = self._scan_top(blob, path, collected, deadline)
        except InputError as exc:
            collected.findings.append(
                incomplete(path, None, "MW900", "Cannot read file", exc.message, exc.fix)
            )
        return _artifact(path, formats, collected, size, started)

    def scan_bytes(self, data: bytes, path: str) -> ArtifactResult:
        """Scan bytes already in memory (the safe loader scans exactly what it will load)."""
        started = time.perf_counter()
        self._inflated_left = self.limits.max_decompressed_bytes
        collected = Collected()
        formats: list[str] = []
        if len(data) > self.limits.max_file_bytes:
            detail = f"{len(data)} bytes exceed the file limit of {self.limits.max_file_bytes}"
            collected.findings.append(limit_reached(path, None, "max_file_bytes", detail))
        else:
            deadline = time.monotonic() + self.limits.max_seconds
            formats = self._scan_top(BytesBlob(data), path, collected, deadline)
        return _artifact(path, formats, collected, len(data), started)

    def _scan_top(self, blob: Blob, path: str, out: Collected, deadline: float) -> list[str]:
        try:
            return self._scan_blob(blob, path, None, 0, out, deadline, "")
        except Exception as exc:  # noqa: BLE001 - a scanner bug must not end the whole scan
            # Never clean, never a crash: the artifact is reported as not fully read.
            out.findings.append(
                incomplete(
                    path,
                    None,
                    "MW999",
                    "Scanner error",
                    f"the scan stopped on an internal error ({type(exc).__name__}: {exc})",
                    "Report this as an mlward bug with the file if you can share it.",
                )
            )
            return ["unknown"]

    # -- dispatch by content ----------------------------------------------------------------------
    def _scan_blob(
        self,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
        hint: str,
    ) -> list[str]:
        if depth > self.limits.max_depth:
            out.findings.append(
                limit_reached(
                    path, member, "max_depth", f"nesting deeper than {self.limits.max_depth}"
                )
            )
            return []
        if time.monotonic() > deadline:
            out.findings.append(limit_reached(path, member, "max_seconds", "time limit reached"))
            return []
        head = blob.read(0, _HEAD)
        if zipfmt.sniff(head):
            return self._scan_zip(blob, path, member, depth, out, deadline)
        if len(head) > 262 and head[257:262] == b"ustar":
            return self._scan_tar(blob, path, member, depth, out, deadline)
        if sevenzip.sniff(head):
            return self._scan_7z(blob, path, member, depth, out, deadline)
        if npy.sniff(head):
            return self._scan_npy(blob, head, path, member, out, deadline)
        codec = compressed.sniff(head)
        if codec is not None:
            return self._scan_compressed(codec, blob, path, member, depth, out, deadline)
        if head.startswith(_TORCH_LEGACY_MAGIC):
            self._scan_pickle(blob, path, member, depth, out, deadline, max_pickles=5, torch=True)
            return ["pytorch-legacy", "pickle"]
        if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return self._scan_pickle(blob, path, member, depth, out, deadline)
        if hint == "torch-storage":
            return ["tensor-data"]
        if hint == "keras-weights" and head.startswith(_HDF5_MAGIC):
            # Keras v3 rebuilds the model from config.json; this file only fills in weights.
            return ["hdf5-weights"]
        if head.startswith(_HDF5_MAGIC):
            return format_checks.scan_hdf5(blob, path, member, out, self.policy)
        for magic, name in _RECOGNISED_UNSUPPORTED:
            if head.startswith(magic):
                out.findings.append(
                    incomplete(
                        path,
                        member,
                        "MW902",
                        "Format not scanned",
                        f"{name} content is recognised but not scanned by this version",
                        "Inspect it with another tool, or convert it to safetensors.",
                    )
                )
                return [name]
        if gguf.sniff(head):
            return format_checks.scan_gguf(blob, path, member, out)
        if safetensors.sniff(blob, head):
            return format_checks.scan_safetensors(blob, path, member, out)
        if (
            head[:1]
            and head[0] in _PICKLE_START
            and blob.size <= self.limits.max_pickle_bytes
            and _could_name_a_global(blob, head)
        ):
            # Protocol 0/1 pickles are text; only the unpickler can tell them from other text.
            probe = self._try_weak_pickle(blob, path, member, depth, out, deadline)
            if probe is not None:
                return probe
        return self._scan_plain(blob, head, path, member, out)

    # -- pickles --------------------------------------------------------------------------------
    def _read_all(
        self, blob: Blob, path: str, member: str | None, out: Collected, limit: int
    ) -> bytes | None:
        if blob.size > limit:
            out.findings.append(
                limit_reached(
                    path,
                    member,
                    "max_pickle_bytes",
                    f"{blob.size} bytes of pickle exceed the limit of {limit}",
                )
            )
            return None
        return blob.read(0, blob.size)

    def _scan_pickle(
        self,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
        *,
        max_pickles: int | None = None,
        torch: bool = False,
        policy: Policy | None = None,
    ) -> list[str]:
        if blob.size > self.limits.max_pickle_bytes:
            detail = (
                f"{blob.size} bytes of pickle exceed the limit of {self.limits.max_pickle_bytes}"
            )
            out.findings.append(limit_reached(path, member, "max_pickle_bytes", detail))
            return ["pickle"]
        with blob.stream() as (reader, start):
            analysis = analyze_reader(
                reader,
                start,
                blob.size,
                policy or self.policy,
                self.limits,
                deadline=deadline,
                max_pickles=max_pickles,
                persistent_ids_expected=torch,
            )
        return self._report_stream(analysis, path, member, depth, out, deadline, torch=torch)

    def _try_weak_pickle(
        self,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
    ) -> list[str] | None:
        with blob.stream() as (reader, start):
            analysis = analyze_reader(
                reader, start, blob.size, self.policy, self.limits, deadline=deadline
            )
        first = analysis.spans[0] if analysis.spans else None
        if first is None and analysis.limit is None:
            return None
        if (
            first is not None
            and first.error is not None
            and not analysis.imports
            and not analysis.actions
        ):
            return None
        return self._report_stream(analysis, path, member, depth, out, deadline, torch=False)

    def _report_stream(
        self,
        analysis: StreamAnalysis,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
        *,
        torch: bool,
    ) -> list[str]:
        formats = ["pickle"]

        def location(offset: int | None, index: int | None, opcode: str | None) -> Location:
            return Location(path, member, offset, index, opcode)

        out.findings.extend(findings_for_stream(analysis, location, expect_persistent_ids=torch))
        for seen in analysis.imports:
            out.imports.setdefault(seen.full, None)
        if any(s.module == "joblib.numpy_pickle" for s in analysis.imports):
            formats = ["joblib", "pickle"]
        if analysis.limit is not None:
            out.findings.append(
                limit_reached(path, member, analysis.limit.limit, analysis.limit.detail)
            )
        for span in analysis.spans:
            if span.error is None:
                continue
            ran_first = span.number > 0 or analysis.imports or analysis.actions
            out.findings.append(
                Finding(
                    "MW190",
                    "Unreadable pickle",
                    Severity.INFO,
                    (
                        f"Pickle {span.number} stops with {span.error} at byte {span.end}. "
                        + (
                            "The loader raises there too, after running everything before it; "
                            "those parts are reported above."
                            if ran_first
                            else "It cannot be read as a pickle."
                        )
                    ),
                    Location(path, member, span.end, span.number),
                    evidence={"error": span.error, "engine": span.engine},
                    incomplete=True,
                    fix="If this file should load, it is damaged; get a fresh copy.",
                )
            )
        if analysis.memory_limited:
            out.findings.append(
                Finding(
                    "MW911",
                    "Memory limit reached",
                    Severity.INFO,
                    "CPython's C unpickler needed more memory than Limits.max_memory_bytes allows "
                    "(a huge memo index does this with a few bytes: plain pickle.load would "
                    "exhaust memory on it). The pure-Python engine read the stream instead.",
                    Location(path, member),
                    evidence={"pickles": analysis.memory_limited},
                )
            )
        if analysis.trailing_bytes and not torch:
            out.findings.append(
                Finding(
                    "MW131",
                    "Data after the last pickle",
                    Severity.INFO,
                    f"{analysis.trailing_bytes} bytes after the last pickle are not a pickle; "
                    "pickle.load never reads them.",
                    Location(path, member, None, None),
                    evidence={"bytes": analysis.trailing_bytes},
                )
            )
        for number, nested in enumerate(analysis.nested):
            label = f"{member or ''}#nested{number}"
            child = Collected()
            child_formats = self._scan_blob(
                BytesBlob(nested.data), path, label, depth + 1, child, deadline, ""
            )
            out.absorb(child, label, child_formats, len(nested.data))
        return formats

    # -- containers -----------------------------------------------------------------------------
    def _child(
        self,
        blob: Blob,
        path: str,
        label: str,
        depth: int,
        out: Collected,
        deadline: float,
        hint: str,
    ) -> list[str]:
        child = Collected()
        formats = self._scan_blob(blob, path, label, depth + 1, child, deadline, hint)
        out.absorb(child, label, formats, blob.size)
        return formats

    def _scan_zip(
        self,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
    ) -> list[str]:
        try:
            entries = zipfmt.read_directory(blob, self.limits.max_members)
        except (zipfmt.ZipFormatError, struct.error) as exc:
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW920",
                    "Unreadable zip",
                    f"zip structure cannot be read: {exc}",
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
            return ["zip"]
        names = [e.name for e in entries]
        is_torch = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
        torchscript = is_torch and any(_TORCHSCRIPT_CONSTANTS.match(n) for n in names)
        is_keras = not is_torch and keras.is_keras_archive(names)
        kind = (
            "torchscript"
            if torchscript
            else "keras"
            if is_keras
            else "pytorch-zip"
            if is_torch
            else "npz"
            if names and all(n.endswith(".npy") for n in names)
            else "zip"
        )
        prefix = f"{member}!" if member else ""
        if torchscript:
            out.findings.append(
                Finding(
                    "MW140",
                    "TorchScript archive",
                    Severity.INFO,
                    "torch.load and torch.jit.load compile and run the TorchScript code in this "
                    "archive's code/ folder; its pickles were checked, the TorchScript code itself "
                    "is not analysed by this version.",
                    Location(path, member),
                )
            )
        for entry in entries:
            if entry.name.endswith("/") and entry.size == 0:
                continue
            label = prefix + entry.name
            try:
                where = zipfmt.locate(blob, entry)
            except (zipfmt.ZipFormatError, struct.error) as exc:
                out.findings.append(
                    incomplete(
                        path,
                        label,
                        "MW920",
                        "Unreadable zip member",
                        str(exc),
                        "The archive is damaged; get a fresh copy.",
                    )
                )
                continue
            if entry.name.startswith(("/", "\\")) or (
                ".." in entry.name and ".." in re.split(r"[/\\]", entry.name)
            ):
                out.findings.append(
                    Finding(
                        "MW932",
                        "Path traversal in archive",
                        Severity.LOW,
                        f"Zip member {entry.name!r} would be extracted outside the target folder.",
                        Location(path, label),
                    )
                )
            if where.local_name != entry.name:
                out.findings.append(
                    Finding(
                        "MW921",
                        "Zip headers disagree",
                        Severity.MEDIUM,
                        f"The local header names {where.local_name!r} but the central directory "
                        f"names {entry.name!r}. Readers that trust different headers see different "
                        "files; honest writers never produce this.",
                        Location(path, label, entry.header_offset),
                        evidence={"local_name": where.local_name, "central_name": entry.name},
                    )
                )
            storage = is_torch and _is_storage_member(entry.name)
            if entry.method == 0 and (storage or entry.compressed_size <= _TINY_MEMBER):
                # Fast paths for what every checkpoint is made of: raw tensor bytes, which torch
                # never unpickles, and tiny text members (version, byteorder, ids).
                if storage:
                    head = blob.read(where.start, min(8, entry.compressed_size))
                    if not _starts_like_a_container(head):
                        size = max(0, min(entry.compressed_size, blob.size - where.start))
                        out.members.append(MemberResult(label, _TENSOR_DATA, Verdict.CLEAN, size))
                        continue
                else:
                    data = blob.read(where.start, entry.compressed_size)
                    if _plain_text(data):
                        out.members.append(MemberResult(label, _TEXT, Verdict.CLEAN, len(data)))
                        continue
            data_blob = self._zip_member_blob(blob, entry, where.start, path, label, out)
            if data_blob is None:
                continue
            hint = "torch-storage" if storage else ""
            if is_keras and entry.name == "config.json":
                format_checks.check_keras_config(
                    data_blob.read(0, data_blob.size), path, label, out, self.policy
                )
            if is_keras and entry.name.endswith(".weights.h5"):
                hint = "keras-weights"
            if hint and not _starts_like_a_container(data_blob.read(0, 8)):
                # Raw tensor bytes, which torch never unpickles: note the member and move on
                # (checkpoints have thousands of these).
                out.members.append(
                    MemberResult(label, ("tensor-data",), Verdict.CLEAN, data_blob.size)
                )
                continue
            if is_torch and entry.name.endswith((".pkl", ".debug_pkl")):
                self._torch_member(
                    data_blob,
                    path,
                    label,
                    depth,
                    out,
                    deadline,
                    self.torchscript_policy if torchscript else self.policy,
                )
            else:
                self._child(data_blob, path, label, depth, out, deadline, hint)
        return [kind]

    def _torch_member(
        self,
        blob: Blob,
        path: str,
        label: str,
        depth: int,
        out: Collected,
        deadline: float,
        policy: Policy | None = None,
    ) -> None:
        child = Collected()
        formats = self._scan_pickle(
            blob, path, label, depth + 1, child, deadline, torch=True, policy=policy
        )
        out.absorb(child, label, formats, blob.size)

    def _zip_member_blob(
        self,
        blob: Blob,
        entry: zipfmt.ZipMember,
        start: int,
        path: str,
        label: str,
        out: Collected,
    ) -> Blob | None:
        if entry.method == 0:
            size = entry.size if entry.size == entry.compressed_size else entry.compressed_size
            if size <= _HEAD:
                return BytesBlob(blob.read(start, size))  # one read serves every later look
            return SliceBlob(blob, start, size)
        if entry.method == 8:
            allowed = self._inflation_allowance(entry.compressed_size)
            if entry.size > allowed:
                out.findings.append(
                    limit_reached(
                        path,
                        label,
                        "max_decompressed_bytes",
                        f"member declares {entry.size} bytes from {entry.compressed_size} "
                        f"(more than the {allowed} this scan may still inflate)",
                    )
                )
                return None
            try:
                data = zipfmt.inflate(blob.read(start, entry.compressed_size), entry.size, allowed)
            except zipfmt.InflateLimit as exc:
                out.findings.append(limit_reached(path, label, "max_decompressed_bytes", str(exc)))
                return None
            except Exception as exc:  # noqa: BLE001 - zlib errors vary
                out.findings.append(
                    incomplete(
                        path,
                        label,
                        "MW920",
                        "Unreadable zip member",
                        f"cannot inflate: {exc}",
                        "The archive is damaged; get a fresh copy.",
                    )
                )
                return None
            if not zipfmt.crc_ok(data, entry):
                out.findings.append(
                    Finding(
                        "MW922",
                        "Zip CRC mismatch",
                        Severity.INFO,
                        "The member's CRC does not match its data. torch.load reads it anyway; "
                        "Python's zipfile refuses it.",
                        Location(path, label),
                    )
                )
            self._inflated_left -= len(data)
            return BytesBlob(data)
        out.findings.append(
            incomplete(
                path,
                label,
                "MW923",
                "Unsupported zip compression",
                f"compression method {entry.method} is not supported",
                "Repack the archive with stored or deflate members.",
            )
        )
        return None

    def _scan_tar(
        self,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
    ) -> list[str]:
        import tarfile  # only tar archives need it; keeps start-up short

        raw = BlobFile(blob)
        try:
            archive = tarfile.open(fileobj=raw, mode="r:")  # noqa: SIM115 - closed with the blob
            infos = []
            for info in archive:
                infos.append(info)
                if len(infos) > self.limits.max_members:
                    out.findings.append(
                        limit_reached(
                            path,
                            member,
                            "max_members",
                            f"more than {self.limits.max_members} tar members",
                        )
                    )
                    break
        except tarfile.TarError as exc:
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW930",
                    "Unreadable tar",
                    f"tar structure cannot be read: {exc}",
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
            return ["tar"]
        names = {i.name for i in infos}
        is_torch = names >= _TORCH_TAR_MEMBERS
        prefix = f"{member}!" if member else ""
        for info in infos:
            label = prefix + info.name
            if not info.isreg():
                if info.issym() or info.islnk() or info.isdev():
                    out.findings.append(
                        Finding(
                            "MW931",
                            "Link or device in tar",
                            Severity.LOW,
                            f"Tar member {info.name!r} is a "
                            f"{'link to ' + repr(info.linkname) if info.linkname else 'device'}; "
                            "extracting it can reach outside the target folder.",
                            Location(path, label),
                            evidence={"linkname": info.linkname},
                        )
                    )
                continue
            if info.name.startswith("/") or ".." in info.name.split("/"):
                out.findings.append(
                    Finding(
                        "MW932",
                        "Path traversal in archive",
                        Severity.LOW,
                        f"Tar member {info.name!r} would be extracted outside the target folder.",
                        Location(path, label),
                    )
                )
            data_blob = SliceBlob(blob, info.offset_data, info.size)
            if is_torch and info.name in ("storages", "tensors"):
                self._scan_torch_tar_stream(data_blob, info.name, path, label, depth, out, deadline)
            elif is_torch and info.name in ("pickle", "sys_info"):
                self._torch_member(data_blob, path, label, depth, out, deadline)
            else:
                self._child(data_blob, path, label, depth, out, deadline, "")
        return ["pytorch-legacy-tar" if is_torch else "tar"]

    def _scan_torch_tar_stream(
        self,
        blob: Blob,
        kind: str,
        path: str,
        label: str,
        depth: int,
        out: Collected,
        deadline: float,
    ) -> None:
        """Legacy tar members interleave small pickles with raw storage or tensor headers."""
        from mlward.scanning.pickle_vm import analyze_records

        data = self._read_all(blob, path, label, out, self.limits.max_pickle_bytes)
        if data is None:
            return
        analysis = analyze_records(
            data,
            self.policy,
            self.limits,
            deadline=deadline,
            kind=kind,
            element_sizes=_STORAGE_ELEMENT_SIZE,
        )
        child = Collected()
        formats = self._report_stream(analysis, path, label, depth + 1, child, deadline, torch=True)
        out.absorb(child, label, formats, blob.size)

    def _inflation_allowance(self, compressed_size: int) -> int:
        """Bytes one member may inflate to: the ratio limit, within what the file has left."""
        ratio_cap = max(1 << 20, compressed_size * self.limits.max_decompression_ratio)
        return max(0, min(self._inflated_left, ratio_cap))

    def _scan_7z(
        self,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
    ) -> list[str]:
        try:
            members = sevenzip.read_members(
                blob, self.limits.max_decompressed_bytes, self.limits.max_members
            )
        except sevenzip.SevenZipUnavailable as exc:
            out.findings.append(codec_missing(path, member, "7z archive", exc.fix))
            return ["7z"]
        except sevenzip.SevenZipLimit as exc:
            out.findings.append(limit_reached(path, member, exc.limit, exc.detail))
            return ["7z"]
        except sevenzip.SevenZipError as exc:
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW960",
                    "Unreadable 7z",
                    f"7z archive cannot be read: {exc}",
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
            return ["7z"]
        prefix = f"{member}!" if member else ""
        for item in members:
            self._child(BytesBlob(item.data), path, prefix + item.name, depth, out, deadline, "")
        return ["7z"]

    def _scan_npy(
        self,
        blob: Blob,
        head: bytes,
        path: str,
        member: str | None,
        out: Collected,
        deadline: float,
    ) -> list[str]:
        try:
            header = npy.read_header(
                head if len(head) >= _HEAD or blob.size <= _HEAD else blob.read(0, 1 << 20)
            )
        except npy.NpyFormatError as exc:
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW940",
                    "Unreadable .npy",
                    str(exc),
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
            return ["npy"]
        if not header.has_object:
            return ["npy"]
        rest = SliceBlob(blob, header.data_offset, blob.size - header.data_offset)
        # Offsets in findings count from the first byte after the header.
        self._scan_pickle(rest, path, member, 0, out, deadline)
        return ["npy", "pickle"]

    def _scan_compressed(
        self,
        codec: compressed.Codec,
        blob: Blob,
        path: str,
        member: str | None,
        depth: int,
        out: Collected,
        deadline: float,
    ) -> list[str]:
        try:
            data = compressed.decompress(
                codec, blob, self._inflated_left, self.limits.max_decompression_ratio
            )
            self._inflated_left -= len(data)
        except compressed.DecompressionLimit as exc:
            out.findings.append(limit_reached(path, member, "max_decompressed_bytes", exc.detail))
            return [codec.name]
        except compressed.UnsupportedCodec as exc:
            out.findings.append(
                codec_missing(path, member, f"{exc.codec}-compressed content", exc.fix)
            )
            return [codec.name]
        except Exception as exc:  # noqa: BLE001 - each codec raises its own error types
            if codec.name == "zlib":
                return self._scan_plain(blob, blob.read(0, _HEAD), path, member, out)
            out.findings.append(
                incomplete(
                    path,
                    member,
                    "MW951",
                    "Cannot decompress",
                    f"{codec.name} stream is damaged: {exc}",
                    "If this file should load, it is damaged; get a fresh copy.",
                )
            )
            return [codec.name]
        inner = self._scan_blob(BytesBlob(data), path, member, depth + 1, out, deadline, "")
        return [codec.name, *inner]

    # -- everything else --------------------------------------------------------------------------
    def _scan_plain(
        self, blob: Blob, head: bytes, path: str, member: str | None, out: Collected
    ) -> list[str]:
        if blob.size == 0:
            return ["empty"]
        if _CONTROL_BYTES.search(head) is None:
            try:
                text = blob.read(0, min(blob.size, 1 << 20)).decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                stripped = text.lstrip()
                if stripped[:1] in ("{", "[") and blob.size <= 1 << 20:
                    try:
                        document = json.loads(text)
                    except ValueError:
                        return ["text"]
                    format_checks.check_remote_code(document, path, member, out)
                    return ["json"]
                return ["text"]
        graph_formats = format_checks.scan_graph(blob, path, member, out)
        if graph_formats is not None:
            return graph_formats
        out.findings.append(
            incomplete(
                path,
                member,
                "MW903",
                "Unknown format",
                "content matches no format this version reads (no pickle, archive or numpy file)",
                "Check what produced this file; pass only model files, or ignore this result "
                "for data you know.",
            )
        )
        return ["unknown"]


# Every way a pickle reaches code starts with one of these opcodes: GLOBAL and INST (an opcode
# byte, then two lines), PERSID (one line), BINPERSID, STACK_GLOBAL and EXT1/2/4. Bytes with none
# of them cannot import or call anything, whatever else they parse as, so the unpickler need
# not be run on them.
_GLOBAL_OPCODES = re.compile(rb"[ci][^\n]*\n[^\n]*\n|P[^\n]*\n|[Q\x82\x83\x84\x93]")


def _starts_like_a_container(head: bytes) -> bool:
    """Could these first bytes begin a pickle, archive or compressed stream?"""
    if not head or head[0] not in _CONTAINER_FIRST_BYTES:
        return False  # most tensor data: one set lookup instead of a dozen prefix tests
    return (
        (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)
        or zipfmt.sniff(head)
        or npy.sniff(head)
        or sevenzip.sniff(head)
        or compressed.sniff(head) is not None
    )


_CONTAINER_FIRST_BYTES = frozenset(
    {0x80, zipfmt.LOCAL_MAGIC[0], zipfmt.EOCD_MAGIC[0], npy.MAGIC[0], sevenzip.MAGIC[0]}
    | compressed.FIRST_BYTES
)


def _is_storage_member(name: str) -> bool:
    """``data/<n>`` under the archive folder: where torch keeps each storage's raw bytes."""
    folder, _, number = name.rpartition("/")
    return number.isdecimal() and (folder == "data" or folder.endswith("/data"))


_TINY_MEMBER = 256
_TENSOR_DATA = ("tensor-data",)
_TEXT = ("text",)
# First bytes of every format _scan_blob tells apart from text, and of JSON documents.
_NOT_PLAIN_FIRST = _CONTAINER_FIRST_BYTES | frozenset(b"GR\x89{[")


def _plain_text(data: bytes) -> bool:
    """Would _scan_blob call these (at most 256) bytes plain text and report nothing?"""
    if not data or len(data) > _TINY_MEMBER or data[0] in _NOT_PLAIN_FIRST:
        return False
    if data[8:9] == b"{" or _CONTROL_BYTES.search(data) or _GLOBAL_OPCODES.search(data):
        return False  # a safetensors header, a binary format, or something a pickle could be
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.lstrip()[:1] not in ("{", "[")


def _could_name_a_global(blob: Blob, head: bytes) -> bool:
    if blob.size <= len(head):
        return _GLOBAL_OPCODES.search(head) is not None
    return True  # larger files: let the unpickler decide (reading them twice costs more)
