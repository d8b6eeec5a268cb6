"""Sign a model, and verify one against its signature, saying exactly what differs.

Verification checks, in order: the bundle can be read; its signature holds for the given key,
certificate chain or Sigstore identity; the signed statement is an OMS manifest whose root
digest matches its resources; the model on disk hashes to that manifest (the hashing method
comes from the bundle). The result is a frozen ``VerificationResult``: on failure it names the
kind of failure and, for content, the files added, missing and changed. Only bad input (a path
or key file that cannot be read, a bad option) raises, as an ``MlwardError`` with a fix.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from typing import Protocol

from mlward.provenance.errors import (
    CONTENT_MISMATCH,
    MALFORMED,
    BundleFormatError,
    HashingError,
    VerificationFailure,
)
from mlward.provenance.hashing import (
    HashingOptions,
    hash_model,
    path_inside_model,
)
from mlward.provenance.manifest import Manifest
from mlward.provenance.oms import (
    DEFAULT_SIGNATURE,
    IN_TOTO_PAYLOAD_TYPE,
    PREDICATE_TYPE,
    Bundle,
    Signer,
    manifest_from_statement,
    parse_statement,
    read_bundle,
    sign_statement,
    statement_for,
)
from mlward.provenance.signers import Verified
from mlward.provenance.tlog.entry import EvidenceEntry, EvidenceKind, Subject


class Verifier(Protocol):
    def verify_bundle(self, bundle: Bundle) -> Verified: ...


@dataclass(frozen=True)
class SignResult:
    """A written signature: where, by whom, and the manifest it covers."""

    signature_path: str
    signer: str
    manifest: Manifest
    bundle: Bundle

    @property
    def root_digest(self) -> str:
        return self.manifest.root_digest_hex

    def evidence(self, model_name: str) -> EvidenceEntry:
        """The log entry for this signature: the model's root digest as subject, so lineage
        finds it, and the digest of the bundle as written, so the log pins this exact file."""
        bundle_digest = hashlib.sha256(self.bundle.to_json().encode("utf-8")).hexdigest()
        return EvidenceEntry(
            EvidenceKind.SIGNATURE,
            subjects=(Subject(model_name, {"sha256": self.root_digest}),),
            payload={
                "format": "oms-v1.0",
                "signature": self.signature_path,
                "signature_sha256": bundle_digest,
                "signer": self.signer,
                "resources": len(self.manifest.resources),
            },
        )


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of verifying a model. ``ok`` only when every check passed.

    ``failure`` is one of ``signature-invalid``, ``untrusted-signer``, ``malformed-signature``,
    ``content-mismatch`` (or ``None``). For a content mismatch ``added`` are files on disk the
    signature does not cover, ``missing`` files it covers that are gone, ``changed`` files whose
    bytes differ; paths are relative to the model.
    """

    ok: bool
    model_path: str
    signature_path: str
    signer: str | None = None
    model_name: str | None = None
    root_digest: str | None = None
    failure: str | None = None
    message: str = ""
    fix: str = ""
    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def summary(self) -> str:
        """A few lines for a terminal: what was verified, or exactly what is wrong."""
        if self.ok:
            return (
                f"verified: {self.model_path} matches {self.signature_path} "
                f"(signed by {self.signer}; root digest sha256:{self.root_digest})"
            )
        lines = [f"verification FAILED: {self.message}"]
        for label, paths in (
            ("added (not signed)", self.added),
            ("missing", self.missing),
            ("changed", self.changed),
        ):
            lines.extend(f"  {label}: {path}" for path in paths)
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


def sign_model(
    model_path: str | os.PathLike[str],
    signer: Signer,
    signature_path: str | os.PathLike[str] = DEFAULT_SIGNATURE,
    hashing: HashingOptions | None = None,
) -> SignResult:
    """Hash the model, sign its manifest and write the bundle to ``signature_path``.

    Signing reads every byte (the cache is refreshed, never trusted): a signature vouches for
    content, so it is made from content.
    """
    model = os.fspath(model_path)
    signature = os.fspath(signature_path)
    own = path_inside_model(model, signature)
    options = replace(hashing or HashingOptions(), paranoid=True)
    manifest = hash_model(model, options, extra_ignored=[own] if own else [])
    bundle = sign_statement(statement_for(manifest), signer)
    bundle.write(signature)
    return SignResult(signature, signer.describe(), manifest, bundle)


def compare(expected: Manifest, actual: Manifest) -> tuple[tuple[str, ...], ...]:
    """(added, missing, changed) file paths between a signed and a computed manifest."""
    want, have = expected.by_path(), actual.by_path()
    added = tuple(sorted(set(have) - set(want)))
    missing = tuple(sorted(set(want) - set(have)))
    changed = tuple(sorted(p for p in set(want) & set(have) if want[p] != have[p]))
    return added, missing, changed


def verify_model(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    signature_path: str | os.PathLike[str] = DEFAULT_SIGNATURE,
    hashing: HashingOptions | None = None,
    *,
    ignore_unsigned_files: bool = False,
) -> VerificationResult:
    """Verify a model against its OMS bundle.

    ``hashing`` supplies what the bundle does not decide (symlinks, extra ignore paths, jobs,
    cache, paranoid); the algorithm and shard size always come from the bundle.
    ``ignore_unsigned_files`` hashes only the files the signature covers, so extra files are
    not reported as added.
    """
    model = os.fspath(model_path)
    signature = os.fspath(signature_path)
    base = VerificationResult(ok=False, model_path=model, signature_path=signature)
    if not os.path.lexists(model):
        raise HashingError(f"{model}: no such file or directory", fix="Check the model path.")
    try:
        bundle = read_bundle(signature)
        verified = verifier.verify_bundle(bundle)
        if verified.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise BundleFormatError(
                f"the envelope carries {verified.payload_type}, not an in-toto statement",
                fix="Sign the model again with mlward sign or model_signing sign.",
            )
        statement = parse_statement(verified.payload)
        expected = manifest_from_statement(statement)
    except VerificationFailure as exc:
        return replace(base, failure=exc.kind, message=exc.message, fix=exc.fix)
    except BundleFormatError as exc:
        return replace(base, failure=MALFORMED, message=exc.message, fix=exc.fix)
    options = hashing or HashingOptions()
    recorded = expected.serialization
    redo = HashingOptions.for_serialization(
        recorded,
        allow_symlinks=options.allow_symlinks,
        ignore_paths=(*options.ignore_paths, *recorded.ignore_paths),
        ignore_git_paths=options.ignore_git_paths,
        jobs=options.jobs,
        cache=options.cache,
        cache_path=options.cache_path,
        paranoid=options.paranoid,
        progress=options.progress,
    )
    own = path_inside_model(model, signature)
    only = expected.paths() if ignore_unsigned_files else None
    actual = hash_model(model, redo, extra_ignored=[own] if own else [], only=only)
    found = replace(
        base,
        signer=verified.signer,
        model_name=expected.model_name,
        # The subject's digest as signed (resources may be listed in another order); a 0.2
        # signature has no root digest, so it gets the one its files give.
        root_digest=(
            str(statement["subject"][0]["digest"]["sha256"])
            if statement.get("predicateType") == PREDICATE_TYPE
            else expected.root_digest_hex
        ),
    )
    added, missing, changed = compare(expected, actual)
    if added or missing or changed:
        counts = ", ".join(
            f"{len(paths)} {label}"
            for label, paths in (("added", added), ("missing", missing), ("changed", changed))
            if paths
        )
        return replace(
            found,
            failure=CONTENT_MISMATCH,
            message=f"the model differs from what was signed: {counts}",
            fix="Restore the signed files, or sign the model again if the change is intended.",
            added=added,
            missing=missing,
            changed=changed,
        )
    return replace(found, ok=True)


@dataclass(frozen=True)
class VerifiedStatement:
    """An in-toto statement whose signature held, and who signed it."""

    statement: dict[str, object]
    signer: str


def verify_statement(
    signature_path: str | os.PathLike[str], verifier: Verifier
) -> VerifiedStatement:
    """Check any signed in-toto statement (lineage, ML-BOM, model signature) and return it.

    Raises ``VerificationFailure`` (``kind`` says why) when the signature does not hold and
    ``BundleFormatError`` when the file is not a DSSE bundle of an in-toto statement.
    """
    verified = verifier.verify_bundle(read_bundle(signature_path))
    if verified.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise BundleFormatError(
            f"the envelope carries {verified.payload_type}, not an in-toto statement",
            fix="Sign an in-toto Statement v1.",
        )
    return VerifiedStatement(parse_statement(verified.payload), verified.signer)
