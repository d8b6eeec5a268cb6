"""The corners of the pickle analysis and containers named in DESIGN.md idea 2 and 3.

Each stream here is assembled by hand so the test pins one mechanism; the broad hostile corpus
lives in tests/payloads and is proven to trigger with the real loaders there.
"""

from __future__ import annotations

import base64
import io
import pickle
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from mlward import Limits, ScanOptions, Severity, Verdict, scan
from mlward.results import ArtifactResult

SYSTEM_P2 = b"cos\nsystem\n"  # GLOBAL opcode naming os.system


def _scan_bytes(
    tmp_path: Path, data: bytes, name: str = "sample.bin", **options: object
) -> ArtifactResult:
    path = tmp_path / name
    path.write_bytes(data)
    report = scan([path], ScanOptions(**options))  # type: ignore[arg-type]
    assert len(report.artifacts) == 1
    return report.artifacts[0]


def _rules(artifact: ArtifactResult) -> set[str]:
    return {f.rule_id for f in artifact.findings}


def _call_system(proto: int = 2) -> bytes:
    return (
        (pickle.PROTO + bytes([proto]) if proto >= 2 else b"")
        + SYSTEM_P2
        + b"(X\x04\x00\x00\x00echotR"
    )


def test_plain_gadget_is_malicious_and_names_the_call(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, _call_system() + b".")
    assert art.verdict is Verdict.MALICIOUS
    finding = next(f for f in art.findings if f.rule_id == "MW100")
    assert finding.severity is Severity.CRITICAL
    assert "os.system" in finding.message
    assert "echo" in str(finding.evidence.get("arguments"))


def test_stack_global_names_routed_through_the_memo(tmp_path: Path) -> None:
    stream = (
        b"\x80\x04"
        + b"\x8c\x02os\x94"  # 'os' -> memo 0
        + b"\x8c\x06system\x94"  # 'system' -> memo 1
        + b"0"
        + b"0"  # pop both: only the memo holds them now
        + b"h\x00"
        + b"2"
        + b"0"  # BINGET 0, DUP, POP: a detour through DUP
        + b"h\x01"  # BINGET 1
        + b"\x93"  # STACK_GLOBAL -> os.system
        + b"\x8c\x02ls\x85R."
    )
    art = _scan_bytes(tmp_path, stream)
    assert "os.system" in art.imports
    assert art.verdict is Verdict.MALICIOUS


def test_payload_before_an_invalid_opcode_is_still_reported(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, _call_system() + b"\xff\xfe junk")
    assert art.verdict is Verdict.MALICIOUS
    assert {"MW100", "MW190"} <= _rules(art)


def test_truncated_benign_pickle_is_inconclusive_not_clean(tmp_path: Path) -> None:
    data = pickle.dumps({"weights": list(range(100))}, protocol=4)
    art = _scan_bytes(tmp_path, data[: len(data) // 2])
    assert art.verdict is Verdict.INCONCLUSIVE


def test_payload_in_the_second_pickle_of_a_stream(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, pickle.dumps([1, 2, 3], protocol=2) + _call_system() + b".")
    assert art.verdict is Verdict.MALICIOUS
    finding = next(f for f in art.findings if f.rule_id == "MW100")
    assert finding.location.pickle_index == 1


def test_junk_after_stop_is_noted_but_clean(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, pickle.dumps({"a": 1}, protocol=2) + b"\x00\x01\x02not a pickle")
    assert art.verdict is Verdict.CLEAN
    assert "MW131" in _rules(art)


def test_build_on_a_global_is_a_monkeypatch(tmp_path: Path) -> None:
    # collections.OrderedDict is harmless to import; BUILD on the class itself rewrites it.
    stream = b"\x80\x02ccollections\nOrderedDict\n}X\x07\x00\x00\x00__doc__X\x01\x00\x00\x00xsb."
    art = _scan_bytes(tmp_path, stream)
    assert art.verdict is Verdict.MALICIOUS
    assert "MW110" in _rules(art)


def test_ext_opcode_is_flagged(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, b"\x80\x02\x82\x07)R.")
    assert art.verdict.rank >= Verdict.SUSPICIOUS.rank
    assert "MW120" in _rules(art)


def test_implicit_calls_on_an_untrusted_object_are_described(tmp_path: Path) -> None:
    stream = b"\x80\x02cmypkg.models\nBag\n)\x81(K\x01K\x02e}X\x01\x00\x00\x00aK\x01sb."
    art = _scan_bytes(tmp_path, stream)
    finding = next(f for f in art.findings if f.rule_id == "MW101")
    assert {"new", "extend", "setstate"} <= set(finding.evidence["operations"])
    assert "__setstate__" in finding.message
    assert finding.fix == "--allow mypkg.models.Bag"
    allowed = _scan_bytes(tmp_path, stream, allow=("mypkg.models.Bag",))
    assert allowed.verdict is Verdict.CLEAN


def test_nested_pickle_behind_base64_is_scanned(tmp_path: Path) -> None:
    inner = _call_system() + b"."
    encoded = base64.b64encode(inner)
    stream = (
        b"\x80\x02cpickle\nloads\ncbase64\nb64decode\nC"
        + bytes([len(encoded)])
        + encoded
        + b"\x85R\x85R."
    )
    art = _scan_bytes(tmp_path, stream)
    nested = [f for f in art.findings if f.location.member and "#nested" in f.location.member]
    assert any("os.system" in f.message for f in nested)


def test_persistent_id_in_a_plain_pickle_is_informational(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, b"\x80\x02X\x03\x00\x00\x00keyQ.")
    assert "MW130" in _rules(art)
    assert art.verdict is Verdict.CLEAN


def test_protocol_zero_pickle_under_a_text_name(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, _call_system(proto=0) + b".", name="notes.txt")
    assert art.verdict is Verdict.MALICIOUS
    plain = _scan_bytes(tmp_path, b"copyright 2026\nAll rights reserved\n", name="LICENSE")
    assert plain.verdict is Verdict.CLEAN
    assert plain.formats == ("text",)


def test_memo_bomb_does_not_exhaust_memory(tmp_path: Path) -> None:
    bomb = b"\x80\x02]r" + struct.pack("<I", 1_000_000_000) + _call_system()[2:] + b"."
    started = time.monotonic()
    art = _scan_bytes(tmp_path, bomb)
    assert time.monotonic() - started < 30
    assert art.verdict is Verdict.MALICIOUS
    assert "MW911" in _rules(art)


def test_zip_with_bad_crc_and_disagreeing_headers_is_still_read(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("model/data.pkl", _call_system() + b".")
        archive.writestr("model/version", "3\n")
    data = bytearray(buffer.getvalue())
    local = data.index(b"model/data.pkl")
    data[local : local + 14] = b"model/xxxx.pkl"  # local header now names another file
    crc_at = data.index(b"PK\x01\x02") + 16
    data[crc_at : crc_at + 4] = b"\x00\x00\x00\x00"  # central CRC now wrong
    art = _scan_bytes(tmp_path, bytes(data), name="model.pt")
    assert art.formats == ("pytorch-zip",)
    assert art.verdict is Verdict.MALICIOUS
    assert "MW921" in _rules(art)


def test_limit_reached_on_a_benign_file_is_inconclusive(tmp_path: Path) -> None:
    data = pickle.dumps(list(range(10_000)), protocol=4)
    art = _scan_bytes(tmp_path, data, limits=Limits(max_pickle_bytes=1024))
    assert art.verdict is Verdict.INCONCLUSIVE
    assert "MW910" in _rules(art)


def test_decompression_bomb_is_bounded(tmp_path: Path) -> None:
    bomb = zlib.compress(b"\x00" * (64 << 20), 9)
    art = _scan_bytes(
        tmp_path, bomb, name="x.joblib", limits=Limits(max_decompressed_bytes=8 << 20)
    )
    assert art.verdict is Verdict.INCONCLUSIVE
    assert "MW910" in _rules(art)


def test_scanning_never_runs_the_payload(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'w').write('x')".encode()
    stream = b"\x80\x02cbuiltins\nexec\nX" + struct.pack("<I", len(payload)) + payload + b"\x85R."
    art = _scan_bytes(tmp_path, stream)
    assert art.verdict is Verdict.MALICIOUS
    assert not marker.exists()
    # The sample is real: the actual loader, in a subprocess, runs it.
    sample = tmp_path / "sample.bin"
    subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.load(open({str(sample)!r}, 'rb'))"],
        check=True,
        timeout=60,
    )
    assert marker.exists()


@pytest.mark.parametrize("depth", [1, 3])
def test_nested_zips_are_opened(tmp_path: Path, depth: int) -> None:
    data = _call_system() + b"."
    for level in range(depth):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"inner{level}.bin", data)
        data = buffer.getvalue()
    art = _scan_bytes(tmp_path, data, name="outer.zip")
    assert art.verdict is Verdict.MALICIOUS
    too_deep = _scan_bytes(tmp_path, data, name="outer.zip", limits=Limits(max_depth=1))
    if depth > 1:
        assert too_deep.verdict is Verdict.INCONCLUSIVE


def _compress(codec: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    import lz4.frame
    import zstandard

    return {
        "gzip": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
        "zlib": zlib.compress,
        "lz4": lz4.frame.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }[codec](data)


@pytest.mark.parametrize("codec", ["gzip", "bz2", "xz", "lzma", "zlib", "lz4", "zstd"])
def test_every_codec_is_opened(tmp_path: Path, codec: str) -> None:
    art = _scan_bytes(tmp_path, _compress(codec, _call_system() + b"."), name="model.bin")
    assert art.formats[0] == codec
    assert art.verdict is Verdict.MALICIOUS
    benign = _compress(codec, pickle.dumps({"w": list(range(50))}, protocol=4))
    assert _scan_bytes(tmp_path, benign, name="ok.bin").verdict is Verdict.CLEAN


def test_nested_torch_bytes_written_as_latin1_text_are_scanned(tmp_path: Path) -> None:
    """Protocol-2 pickles write bytes as _codecs.encode(text, "latin1"); torch's own pickling
    of storages nests a whole torch.save stream that way, to be loaded by _load_from_bytes."""
    marker = tmp_path / "ran"
    inner = pickle.dumps(
        _Marker(str(marker)), protocol=2
    )  # torch.load reads this as the legacy magic-number pickle, running it first
    text = inner.decode("latin-1").encode("utf-8")
    stream = (
        b"\x80\x02ctorch.storage\n_load_from_bytes\nc_codecs\nencode\nX"
        + struct.pack("<I", len(text))
        + text
        + b"X\x06\x00\x00\x00latin1\x86R\x85R."
    )
    art = _scan_bytes(tmp_path, stream, name="storage.pkl")
    assert art.verdict is Verdict.MALICIOUS
    assert any(m.member == "#nested0" for m in art.members)
    assert not marker.exists()
    sample = tmp_path / "storage.pkl"
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import torch, pickle; pickle.load(open({str(sample)!r}, 'rb'))",
        ],
        check=False,
        timeout=120,
        capture_output=True,
    )
    assert marker.exists()


class _Marker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({self.path!r}, 'w').write('x')",))


def test_7z_archive_members_are_scanned(tmp_path: Path) -> None:
    """The "nullifAI" delivery: a model inside a 7z archive, which picklescan never opens."""
    import py7zr

    archive = tmp_path / "model.7z"
    with py7zr.SevenZipFile(archive, "w") as out:
        out.writestr(_call_system() + b".", "model/data.pkl")
        out.writestr(pickle.dumps({"w": [1.0]}, protocol=4), "model/extra.pkl")
    report = scan([archive])
    art = report.artifacts[0]
    assert art.formats == ("7z",)
    assert art.verdict is Verdict.MALICIOUS
    assert {m.member for m in art.members} == {"model/data.pkl", "model/extra.pkl"}
    damaged = tmp_path / "broken.7z"
    damaged.write_bytes(archive.read_bytes()[:40])
    assert scan([damaged]).artifacts[0].verdict is Verdict.INCONCLUSIVE


def test_safetensors_headers_are_checked(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    save_file({"a": torch.randn(3, 4), "b": torch.zeros(2, dtype=torch.int64)}, good)
    data = good.read_bytes()
    assert _scan_bytes(tmp_path, data, name="ok.safetensors").verdict is Verdict.CLEAN
    appended = _scan_bytes(tmp_path, data + _call_system() + b".", name="appended.safetensors")
    assert appended.verdict is Verdict.SUSPICIOUS
    assert "MW971" in _rules(appended)
    truncated = _scan_bytes(tmp_path, data[:-8], name="cut.safetensors")
    assert truncated.verdict is Verdict.INCONCLUSIVE
    assert "MW970" in _rules(truncated)


def test_hugging_face_remote_code_is_reported(tmp_path: Path) -> None:
    import json

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(
        json.dumps(
            {
                "model_type": "custom",
                "auto_map": {
                    "AutoConfig": "configuration_custom.CustomConfig",
                    "AutoModel": ["modeling_custom.CustomModel", None],
                },
            }
        )
    )
    (repo / "modeling_custom.py").write_text("import torch\nclass CustomModel: ...\n")
    (repo / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    report = scan([repo])
    by_name = {Path(a.path).name: a for a in report.artifacts}
    config = by_name["config.json"]
    assert config.verdict is Verdict.SUSPICIOUS
    finding = next(f for f in config.findings if f.rule_id == "MW995")
    assert "modeling_custom.py" in finding.evidence["python_files"]
    assert by_name["tokenizer_config.json"].verdict is Verdict.CLEAN


def test_zip_member_paths_that_escape_are_flagged(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../outside.txt", "hello")
    art = _scan_bytes(tmp_path, buffer.getvalue(), name="a.zip")
    assert art.verdict is Verdict.SUSPICIOUS
    assert "MW932" in _rules(art)


def test_scanning_needs_no_tensorflow_keras_or_onnxruntime(tmp_path: Path) -> None:
    """Block those imports in a fresh interpreter, then scan a Keras file."""
    script = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'onnxruntime', 'torch'):\n"
        "    sys.modules[name] = None\n"
        "from mlward import scan\n"
        "import json, zipfile\n"
        "path = sys.argv[1]\n"
        "with zipfile.ZipFile(path, 'w') as z:\n"
        "    z.writestr('metadata.json', '{}')\n"
        "    z.writestr('config.json', json.dumps({'module': 'keras', 'class_name': 'Sequential',"
        " 'config': {'layers': [{'class_name': 'Lambda', 'config': {'function': {'class_name':"
        " '__lambda__', 'config': {'code': 'AAAA'}}}}]}}))\n"
        "print(scan([path]).artifacts[0].verdict.value)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "malicious"


def test_safetensors_header_length_past_the_end_is_flagged(tmp_path: Path) -> None:
    art = _scan_bytes(tmp_path, struct.pack("<Q", 10_000) + b'{"a": 1}', name="x.safetensors")
    assert art.formats == ("safetensors",)
    assert art.verdict is Verdict.SUSPICIOUS


def test_zip_bombs_are_bounded_by_ratio_and_by_a_total_per_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.bin", b"\x00" * (32 << 20))  # about 32 KiB compressed
    art = _scan_bytes(
        tmp_path, buffer.getvalue(), name="bomb.zip", limits=Limits(max_decompression_ratio=100)
    )
    assert art.verdict is Verdict.INCONCLUSIVE
    assert "MW910" in _rules(art)
    layered = io.BytesIO()
    with zipfile.ZipFile(layered, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(8):
            archive.writestr(f"part{index}.bin", b"\x00" * (4 << 20))
    total = _scan_bytes(
        tmp_path,
        layered.getvalue(),
        name="many.zip",
        limits=Limits(max_decompressed_bytes=10 << 20),
    )
    assert total.verdict is Verdict.INCONCLUSIVE


def test_an_internal_error_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlward.scanning import engine

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.Scanner, "_scan_pickle", broken)
    art = _scan_bytes(tmp_path, pickle.dumps([1, 2], protocol=4))
    assert art.verdict is Verdict.INCONCLUSIVE
    assert "MW999" in _rules(art)
