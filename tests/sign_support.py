"""Shared helpers for the signing tests: keys and a private CA built in code, schema checks,
and the reference ``model_signing`` CLI (installed from the test extra) run in a subprocess."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)


def new_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def write_private(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return path


def write_public(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlward tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def issue(
    subject_key: ec.EllipticCurvePrivateKey,
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    issuer: x509.Certificate | None = None,
    *,
    ca: bool = False,
    code_signing: bool = True,
    digital_signature: bool = True,
) -> x509.Certificate:
    """A certificate as a private CA issues them: CA certs with basicConstraints CA and
    keyCertSign; leaves with digitalSignature and the codeSigning extended key usage."""
    signer_key = issuer_key or subject_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=not digital_signature,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        usages = [
            ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH
        ]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def write_certs(path: Path, *certificates: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return path


@dataclass(frozen=True)
class Pki:
    """Files of a private CA: root -> intermediate -> code-signing leaf, plus a plain key pair."""

    key: Path
    public: Path
    other_public: Path
    root: Path
    intermediate: Path
    leaf_key: Path
    leaf: Path
    other_root: Path
    server_leaf_key: Path
    server_leaf: Path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    key, other = new_key(), new_key()
    root_key, int_key, leaf_key = new_key(), new_key(ec.SECP384R1()), new_key()
    root = issue(root_key, "mlward test root", ca=True)
    intermediate = issue(int_key, "mlward test intermediate", root_key, root, ca=True)
    leaf = issue(leaf_key, "mlward test signer", int_key, intermediate)
    other_root_key = new_key()
    other_root = issue(other_root_key, "someone else's root", ca=True)
    server_key = new_key()
    server = issue(
        server_key,
        "not a signer",
        int_key,
        intermediate,
        code_signing=False,
        digital_signature=False,
    )
    return Pki(
        key=write_private(folder / "key.pem", key),
        public=write_public(folder / "key.pub", key),
        other_public=write_public(folder / "other.pub", other),
        root=write_certs(folder / "root.pem", root),
        intermediate=write_certs(folder / "intermediate.pem", intermediate),
        leaf_key=write_private(folder / "leaf-key.pem", leaf_key),
        leaf=write_certs(folder / "leaf.pem", leaf),
        other_root=write_certs(folder / "other-root.pem", other_root),
        server_leaf_key=write_private(folder / "server-key.pem", server_key),
        server_leaf=write_certs(folder / "server.pem", server),
    )


def make_model(folder: Path) -> Path:
    """A small model folder with nested files, an empty file, a hidden file and git files."""
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "a-c").mkdir()
    (folder / ".git").mkdir()
    (folder / "config.json").write_text('{"hidden": 16}')
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "sub" / "deeper" / "adapter.bin").write_bytes(b"adapter" * 100)
    (folder / "a-c" / "y").write_bytes(b"world")
    (folder / "empty").write_bytes(b"")
    (folder / ".hidden").write_bytes(b"dotfile")
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".gitattributes").write_text("*.bin filter=lfs\n")
    return folder


def _schema(name: str) -> dict[str, object]:
    text = resources.files("mlward.schemas").joinpath(name).read_text(encoding="utf-8")
    document: dict[str, object] = json.loads(text)
    return document


def validate_bundle(path: Path) -> dict[str, object]:
    """Validate a bundle and its decoded statement against mlward's OMS schemas."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(_schema("oms-bundle.schema.json")).validate(bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    jsonschema.Draft202012Validator(_schema("oms-statement.schema.json")).validate(statement)
    return statement


def reference(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the reference ``model_signing`` CLI from the test environment."""
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def mlward_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlward.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def validate_document(bundle: dict[str, Any]) -> None:
    """Schema-check a bundle document; its statement too when it is an OMS model signature."""
    jsonschema.Draft202012Validator(_schema("oms-bundle.schema.json")).validate(bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    if statement.get("predicateType") == "https://model_signing/signature/v1.0":
        jsonschema.Draft202012Validator(_schema("oms-statement.schema.json")).validate(statement)


def validate_every_written_bundle(monkeypatch: Any) -> list[str]:
    """Patch ``Bundle.write`` so every bundle mlward writes is schema-checked as it is written
    (before a test tampers with it); returns the paths written."""
    from mlward.provenance.oms import Bundle

    written: list[str] = []
    original = Bundle.write

    def checked(self: Bundle, path: Any) -> None:
        validate_document(json.loads(self.to_json()))
        original(self, path)
        written.append(str(path))

    monkeypatch.setattr(Bundle, "write", checked)
    return written
