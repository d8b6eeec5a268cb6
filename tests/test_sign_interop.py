"""Interoperability with the reference implementation (PyPI model-signing 1.1.1, test extra):
bundles mlward writes verify with the reference CLI, and bundles the reference writes verify
with mlward, for the key and the certificate methods; both sides reject the same tampering.
Sharded bundles go through the reference's Python API (its CLI only hashes whole files)."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from mlward.cli.main import main
from tests.sign_support import (
    Pki,
    make_model,
    make_pki,
    reference,
    validate_bundle,
    validate_every_written_bundle,
)

pytest.importorskip("model_signing")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWARD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _schema_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    validate_every_written_bundle(monkeypatch)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


def test_reference_version() -> None:
    assert metadata.version("model-signing") == "1.1.1"


def _ok(result: object) -> None:
    assert getattr(result, "returncode", None) == 0, result


def test_key_mlward_to_reference(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    assert (
        main(["sign", "key", "--private-key", str(pki.key), "--signature", str(sig), str(model)])
        == 0
    )
    validate_bundle(sig)
    _ok(reference("verify", "key", "--public_key", pki.public, "--signature", sig, model))
    (model / "weights.bin").write_bytes(b"tampered")
    rejected = reference("verify", "key", "--public_key", pki.public, "--signature", sig, model)
    assert rejected.returncode == 1 and "Hash mismatch for 'weights.bin'" in rejected.stderr


def test_key_reference_to_mlward(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _ok(reference("sign", "key", "--private_key", pki.key, "--signature", sig, model))
    validate_bundle(sig)
    assert (
        main(
            ["verify", "key", "--public-key", str(pki.public), "--signature", str(sig), str(model)]
        )
        == 0
    )
    (model / "extra.bin").write_bytes(b"x")
    capsys.readouterr()
    assert (
        main(
            ["verify", "key", "--public-key", str(pki.public), "--signature", str(sig), str(model)]
        )
        == 1
    )
    assert "added (not signed): extra.bin" in capsys.readouterr().out


def test_signature_inside_model_both_ways(pki: Pki, model: Path) -> None:
    ours, theirs = model / "ours.sig", model / "theirs.sig"
    assert (
        main(["sign", "key", "--private-key", str(pki.key), "--signature", str(ours), str(model)])
        == 0
    )
    _ok(
        reference(
            "sign",
            "key",
            "--private_key",
            pki.key,
            "--signature",
            theirs,
            model,
            "--ignore-paths",
            ours,
        )
    )
    _ok(
        reference(
            "verify",
            "key",
            "--public_key",
            pki.public,
            "--signature",
            ours,
            model,
            "--ignore-paths",
            theirs,
        )
    )
    code = main(
        ["verify", "key", "--public-key", str(pki.public), "--signature", str(theirs), str(model)]
    )
    assert code == 0


def _cert_sign_args(pki: Pki, sig: Path) -> list[str]:
    return [
        "--private_key", str(pki.leaf_key), "--signing_certificate", str(pki.leaf),
        "--certificate_chain", str(pki.intermediate), "--signature", str(sig),
    ]  # fmt: skip


def test_certificate_mlward_to_reference(pki: Pki, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    assert main(["sign", "certificate", *_cert_sign_args(pki, sig), str(model)]) == 0
    validate_bundle(sig)
    _ok(
        reference(
            "verify", "certificate", "--certificate_chain", pki.root, "--signature", sig, model
        )
    )
    untrusted = reference(
        "verify", "certificate", "--certificate_chain", pki.other_root, "--signature", sig, model
    )
    assert untrusted.returncode == 1


def test_certificate_reference_to_mlward(
    pki: Pki, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = tmp_path / "model.sig"
    _ok(reference("sign", "certificate", *_cert_sign_args(pki, sig), model))
    validate_bundle(sig)
    verify = ["verify", "certificate", "--signature", str(sig), str(model)]
    assert main([*verify, "--certificate-chain", str(pki.root)]) == 0
    capsys.readouterr()
    assert main([*verify, "--certificate-chain", str(pki.other_root)]) == 1
    assert "untrusted signer" in capsys.readouterr().out


def test_reference_rejects_what_mlward_rejects(pki: Pki, tmp_path: Path) -> None:
    """A leaf without signing usage, signed by the reference (it does not check at signing)."""
    model = make_model(tmp_path / "m")
    sig = tmp_path / "server.sig"
    _ok(
        reference(
            "sign", "certificate", "--private_key", pki.server_leaf_key,
            "--signing_certificate", pki.server_leaf, "--certificate_chain", pki.intermediate,
            "--signature", sig, model,
        )
    )  # fmt: skip
    rejected = reference(
        "verify", "certificate", "--certificate_chain", pki.root, "--signature", sig, model
    )
    assert rejected.returncode == 1 and "cannot be used for signing" in rejected.stderr
    code = main(
        [
            "verify",
            "certificate",
            "--certificate-chain",
            str(pki.root),
            "--signature",
            str(sig),
            str(model),
        ]
    )
    assert code == 1


def test_sharded_both_ways(pki: Pki, model: Path, tmp_path: Path) -> None:
    import model_signing
    from model_signing import hashing as ref_hashing

    def config() -> ref_hashing.Config:
        return ref_hashing.Config().use_shard_serialization(shard_size=1000)

    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    assert (
        main(
            [
                "sign",
                "key",
                "--private-key",
                str(pki.key),
                "--signature",
                str(ours),
                "--shard-size",
                "1000",
                str(model),
            ]
        )
        == 0
    )
    validate_bundle(ours)
    model_signing.verifying.Config().use_elliptic_key_verifier(
        public_key=pki.public
    ).set_hashing_config(config()).verify(model, ours)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=pki.key).set_hashing_config(
        config()
    ).sign(model, theirs)
    # The reference writes shard_size through a protobuf Struct (1000.0); mlward reads it.
    statement = validate_bundle(theirs)
    assert statement["predicate"]["serialization"]["shard_size"] == 1000  # type: ignore[index]
    assert (
        main(
            [
                "verify",
                "key",
                "--public-key",
                str(pki.public),
                "--signature",
                str(theirs),
                str(model),
            ]
        )
        == 0
    )


def test_blake3_both_ways(pki: Pki, model: Path, tmp_path: Path) -> None:
    import model_signing
    from model_signing import hashing as ref_hashing

    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    assert (
        main(
            [
                "sign",
                "key",
                "--private-key",
                str(pki.key),
                "--signature",
                str(ours),
                "--hash-algorithm",
                "blake3",
                str(model),
            ]
        )
        == 0
    )
    # Without a hashing config the reference takes it from the bundle.
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pki.public).verify(
        model, ours
    )
    model_signing.signing.Config().use_elliptic_key_signer(private_key=pki.key).set_hashing_config(
        ref_hashing.Config().use_file_serialization(hashing_algorithm="blake3")
    ).sign(model, theirs)
    validate_bundle(theirs)
    assert (
        main(
            [
                "verify",
                "key",
                "--public-key",
                str(pki.public),
                "--signature",
                str(theirs),
                str(model),
            ]
        )
        == 0
    )


def test_model_signing_0_2_bundles_still_verify(pki: Pki, model: Path, tmp_path: Path) -> None:
    """A bundle as model_signing 0.2 wrote it (one subject per file, predicate Digests/v0.1,
    the mis-encoded PAE, no key hint) verifies with mlward as with the reference."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from mlward.provenance.oms import legacy_pae

    key = serialization.load_pem_private_key(pki.key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    files = sorted(
        p
        for p in model.rglob("*")
        if p.is_file() and not p.relative_to(model).parts[0].startswith(".git")
    )
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": str(p.relative_to(model)),
                "digest": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()},
            }
            for p in files
        ],
        "predicateType": "https://model_signing/Digests/v0.1",
        "predicate": {},
    }
    payload = json.dumps(statement).encode()
    signature = key.sign(
        legacy_pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256())
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"rawBytes": base64.b64encode(der).decode()}},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    sig = tmp_path / "legacy.sig"
    sig.write_text(json.dumps(bundle))
    _ok(reference("verify", "key", "--public_key", pki.public, "--signature", sig, model))
    assert (
        main(
            ["verify", "key", "--public-key", str(pki.public), "--signature", str(sig), str(model)]
        )
        == 0
    )
    (model / "weights.bin").write_bytes(b"changed")
    assert (
        main(
            ["verify", "key", "--public-key", str(pki.public), "--signature", str(sig), str(model)]
        )
        == 1
    )


def test_single_file_and_unicode_names_both_ways(pki: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "unicode"
    folder.mkdir()
    (folder / "模型.bin").write_bytes(b"weights")
    (folder / "space name.txt").write_text("x")
    single = folder / "模型.bin"
    for model in (folder, single):
        ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
        assert (
            main(
                ["sign", "key", "--private-key", str(pki.key), "--signature", str(ours), str(model)]
            )
            == 0
        )
        _ok(reference("verify", "key", "--public_key", pki.public, "--signature", ours, model))
        _ok(reference("sign", "key", "--private_key", pki.key, "--signature", theirs, model))
        assert (
            main(
                [
                    "verify",
                    "key",
                    "--public-key",
                    str(pki.public),
                    "--signature",
                    str(theirs),
                    str(model),
                ]
            )
            == 0
        )
