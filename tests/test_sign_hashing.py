"""Model hashing: the same manifest as the reference, ignore paths, symlinks, shards, BLAKE3,
the incremental cache and --paranoid."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlward.errors import OptionsError
from mlward.provenance import hashing
from mlward.provenance.errors import HashingError
from mlward.provenance.hashing import HashingOptions, hash_model
from tests.sign_support import make_model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MLWARD_CACHE_DIR", str(folder))
    return folder


def _reference_manifest(model: Path, **shard: int) -> tuple[str, dict[str, str]]:
    from model_signing import hashing as ref_hashing
    from model_signing._signing import signing as ref_signing

    config = ref_hashing.Config()
    if shard:
        config = config.use_shard_serialization(**shard)
    manifest = config.hash(model)
    payload = ref_signing.Payload(manifest)
    resources = {rd.identifier: rd.digest.digest_hex for rd in manifest.resource_descriptors()}
    return payload.statement.pb.subject[0].digest["sha256"], resources


def test_manifest_matches_reference(model: Path) -> None:
    manifest = hash_model(model, HashingOptions(cache=False))
    root, resources = _reference_manifest(model)
    assert manifest.root_digest_hex == root
    assert manifest.digests() == resources
    assert ".hidden" in resources and "empty" in resources
    assert not any(name.startswith(".git") for name in resources)
    assert manifest.model_name == "model"


def test_sharded_manifest_matches_reference(model: Path) -> None:
    manifest = hash_model(model, HashingOptions(shard_size=1000, cache=False))
    root, resources = _reference_manifest(model, shard_size=1000)
    assert manifest.root_digest_hex == root
    assert manifest.digests() == resources
    # Empty files have no shards; a file splits at fixed offsets with a short last shard.
    assert not any(name.startswith("empty:") for name in resources)
    weights = sorted(n for n in resources if n.startswith("weights.bin:"))
    assert len(weights) == 17 and "weights.bin:16000:16384" in weights
    data = (model / "weights.bin").read_bytes()
    assert (
        manifest.digests()["weights.bin:1000:2000"] == hashlib.sha256(data[1000:2000]).hexdigest()
    )
    assert {r.algorithm for r in manifest.resources} == {"sha256-sharded-1000"}


def test_canonical_order_is_by_path_components(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "b").write_bytes(b"1")
    (folder / "a-c").write_bytes(b"2")
    manifest = hash_model(folder, HashingOptions(cache=False))
    # "a/b" < "a-c" by components even though "-" < "/" as characters.
    assert [r.name for r in manifest.resources] == ["a/b", "a-c"]
    assert manifest.root_digest_hex == _reference_manifest(folder)[0]


def test_single_file_model(model: Path) -> None:
    manifest = hash_model(model / "weights.bin", HashingOptions(cache=False))
    assert [r.name for r in manifest.resources] == ["."]
    assert manifest.model_name == "weights.bin"
    assert manifest.root_digest_hex == _reference_manifest(model / "weights.bin")[0]


def test_ignore_paths_and_git_paths(model: Path) -> None:
    manifest = hash_model(model, HashingOptions(ignore_paths=("sub", "./config.json"), cache=False))
    names = set(manifest.digests())
    assert names == {"weights.bin", "a-c/y", "empty", ".hidden"}
    assert set(manifest.serialization.ignore_paths) >= {"sub", "config.json", ".git"}
    kept = hash_model(model, HashingOptions(ignore_git_paths=False, cache=False))
    assert {".git/HEAD", ".gitattributes"} <= set(kept.digests())


def test_symlink_refused_unless_allowed(model: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")
    os.symlink(outside, model / "link.bin")
    with pytest.raises(
        HashingError, match=r"link\.bin is a symbolic link.*\n  fix: .*--allow-symlinks"
    ):
        hash_model(model, HashingOptions(cache=False))
    manifest = hash_model(model, HashingOptions(allow_symlinks=True, cache=False))
    assert manifest.digests()["link.bin"] == hashlib.sha256(b"secret").hexdigest()
    assert manifest.serialization.allow_symlinks is True


def test_linked_folder_is_not_entered(model: Path) -> None:
    os.symlink(model / "sub", model / "sub-link")
    manifest = hash_model(model, HashingOptions(allow_symlinks=True, cache=False))
    assert not any(name.startswith("sub-link") for name in manifest.digests())


def test_special_file_is_an_error(model: Path) -> None:
    os.mkfifo(model / "pipe")
    with pytest.raises(HashingError, match="neither a regular file nor a folder"):
        hash_model(model, HashingOptions(cache=False))


def test_blake3(model: Path) -> None:
    blake3 = pytest.importorskip("blake3")
    manifest = hash_model(model, HashingOptions(algorithm="blake3", cache=False))
    data = (model / "weights.bin").read_bytes()
    assert manifest.digests()["weights.bin"] == blake3.blake3(data).hexdigest()
    assert manifest.serialization.hash_type == "blake3"
    # A file larger than one read chunk goes through the parallel (mapped) path.
    big = model / "big.bin"
    big.write_bytes(os.urandom(3 * 2**20 + 7))
    manifest = hash_model(model, HashingOptions(algorithm="blake3", cache=False))
    assert manifest.digests()["big.bin"] == blake3.blake3(big.read_bytes()).hexdigest()


def test_large_file_and_parallel_jobs_agree(model: Path) -> None:
    (model / "big.bin").write_bytes(os.urandom(5 * 2**20 + 3))
    one = hash_model(model, HashingOptions(jobs=1, cache=False))
    many = hash_model(model, HashingOptions(jobs=4, cache=False))
    sharded = hash_model(model, HashingOptions(jobs=3, shard_size=2**20 + 1, cache=False))
    assert one == many
    assert one.digests()["big.bin"] == hashlib.sha256((model / "big.bin").read_bytes()).hexdigest()
    assert sharded.root_digest_hex == _reference_manifest(model, shard_size=2**20 + 1)[0]


def test_bad_options() -> None:
    with pytest.raises(OptionsError, match="not supported"):
        HashingOptions(algorithm="md5")
    with pytest.raises(OptionsError, match="BLAKE3 is not sharded"):
        HashingOptions(algorithm="blake3", shard_size=10)
    with pytest.raises(OptionsError, match="shard size"):
        HashingOptions(shard_size=-1)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    original = hashing._hash_item

    def counting(item, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(item.name)
        return original(item, *args, **kwargs)

    monkeypatch.setattr(hashing, "_hash_item", counting)
    return reads


def test_cache_hit_skips_unchanged_files(
    model: Path, monkeypatch: pytest.MonkeyPatch, _cache: Path
) -> None:
    first = hash_model(model)
    assert (_cache / "digests.sqlite3").exists()
    reads = _count_reads(monkeypatch)
    second = hash_model(model)
    assert second == first
    assert reads == []


def test_cache_rehashes_changed_file(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = hash_model(model)
    target = model / "config.json"
    stat = target.stat()
    target.write_text('{"hidden": 17}')
    # Restoring mtime does not fool the cache: ctime still moved.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reads = _count_reads(monkeypatch)
    second = hash_model(model)
    assert reads == ["config.json"]
    assert second.digests()["config.json"] != first.digests()["config.json"]


def test_paranoid_rehashes_everything(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = hash_model(model)
    reads = _count_reads(monkeypatch)
    second = hash_model(model, HashingOptions(paranoid=True))
    assert sorted(reads) == sorted(first.digests())
    assert second == first


def test_cache_is_per_algorithm_and_shard_size(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hash_model(model)
    reads = _count_reads(monkeypatch)
    sharded = hash_model(model, HashingOptions(shard_size=4096))
    assert len(reads) == len(sharded.resources)


def test_missing_model(tmp_path: Path) -> None:
    with pytest.raises(HashingError, match="no such file"):
        hash_model(tmp_path / "nope")


def test_public_digest_helpers(model: Path) -> None:
    manifest = hash_model(model, HashingOptions(cache=False))
    assert hashing.root_digest(model) == manifest.root_digest_hex
    assert hashing.file_digests(model) == manifest.digests()
    assert hashing.file_digests(model)["a-c/y"] == hashlib.sha256(b"world").hexdigest()


def test_signing_reads_every_byte(
    model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlward.provenance.signers import KeySigner
    from mlward.provenance.verify import sign_model
    from tests.sign_support import new_key

    hash_model(model)  # warm cache
    reads = _count_reads(monkeypatch)
    result = sign_model(model, KeySigner(new_key()), tmp_path / "model.sig")
    assert sorted(reads) == sorted(result.manifest.digests())


def test_file_changing_while_hashed_is_an_error(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fstat = os.fstat
    calls = {"n": 0}

    def growing(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        calls["n"] += 1
        if calls["n"] % 2 == 0:  # the check after reading sees another size
            fields = list(st)
            fields[6] += 1  # st_size
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(hashing.os, "fstat", growing)
    with pytest.raises(HashingError, match="changed while it was being hashed"):
        hash_model(model, HashingOptions(jobs=1, cache=False))
