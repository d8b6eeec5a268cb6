"""Training lineage: signed SLSA provenance for a training run, its verification, and the chain
data -> run -> model -> signatures -> decisions read back from the evidence log.

A training run is recorded as an in-toto Statement v1 whose subject is the output model (its OMS
root digest) and whose predicate is SLSA Provenance v1 (``https://slsa.dev/provenance/v1``):

- ``buildDefinition.externalParameters``: what the person chose (datasets and base model by
  path, code repository, training parameters);
- ``buildDefinition.internalParameters``: the environment it ran in (Python, platform, every
  installed distribution as ``name==version``);
- ``buildDefinition.resolvedDependencies``: the inputs as resource descriptors with digests:
  each dataset and the base model by their full-content root digest (SHA-256 over the SHA-256 of
  every file, as OMS hashes a model; never a partial digest), the code as a git commit;
- ``runDetails``: builder, run id and times; the metrics as a byproduct.

The statement is signed like a model signature (DSSE envelope in a Sigstore bundle, same key and
certificate signers), so one verifier setup checks both. The subject records how the model was
hashed (``annotations.serialization``), so a verifier re-hashes it the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from mlward.errors import InputError, LogError, OptionsError
from mlward.provenance.errors import (
    CONTENT_MISMATCH,
    MALFORMED,
    BundleFormatError,
    VerificationFailure,
)
from mlward.provenance.hashing import HashingOptions, hash_model, path_inside_model
from mlward.provenance.manifest import Manifest, Serialization
from mlward.provenance.oms import (
    IN_TOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    Bundle,
    Signer,
    parse_statement,
    read_bundle,
    sign_statement,
)
from mlward.provenance.tlog.entry import EvidenceEntry, EvidenceKind, Subject

if TYPE_CHECKING:
    # Only a type: importing the signers would load the cryptography package.
    from mlward.provenance.signers import Verified

SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# Names what externalParameters and internalParameters mean (SLSA's buildType).
BUILD_TYPE = "urn:mlward:training-run:v1"
DEFAULT_BUILDER_ID = "urn:mlward:builder:local"
DEFAULT_PROVENANCE = "provenance.json"
DATASET, BASE_MODEL = "dataset", "base-model"
_HEX40 = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """A hashed input of the run: a dataset or the base model, by full-content root digest."""

    role: str
    name: str
    path: str
    digest: str
    files: int
    size: int

    def descriptor(self) -> dict[str, Any]:
        """The SLSA resource descriptor of this input."""
        return {
            "name": self.name,
            "digest": {"sha256": self.digest},
            "annotations": {
                "mlward.role": self.role,
                "mlward.files": self.files,
                "mlward.bytes": self.size,
                "mlward.digestMethod": "oms-root-sha256",
            },
        }


@dataclass(frozen=True)
class CodeRevision:
    """The commit of the training code's repository; ``dirty`` is None when git is unavailable
    to tell (the commit was read from the .git folder)."""

    path: str
    commit: str
    dirty: bool | None = None
    uri: str | None = None

    def descriptor(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": "code",
            "digest": {"gitCommit": self.commit},
            "annotations": {"mlward.role": "code", "mlward.dirty": self.dirty},
        }
        if self.uri:
            document["uri"] = self.uri
        return document


def _size(manifest: Manifest, path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(path, *rel.split("/"))) for rel in manifest.paths())


def hash_input(path: str, role: str, hashing: HashingOptions | None = None) -> Input:
    """Hash a dataset or base model by its whole content (every byte of every file)."""
    if not os.path.lexists(path):
        flag = "--dataset" if role == DATASET else "--base-model"
        raise InputError(f"{path}: no such file or directory", fix=f"Check the {flag} path.")
    # The model's ignore paths are relative to the model, so they do not apply here.
    options = replace(hashing or HashingOptions(), paranoid=True, ignore_paths=())
    manifest = hash_model(path, options)
    return Input(
        role=role,
        name=manifest.model_name,
        path=path,
        digest=manifest.root_digest_hex,
        files=len(manifest.paths()),
        size=_size(manifest, path),
    )


def _git_dir(start: str) -> str | None:
    """The git folder of the repository holding ``start`` (a worktree's ``.git`` file is
    followed), or None."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as handle:
                line = handle.readline().strip()
            if line.startswith("gitdir:"):
                return os.path.normpath(os.path.join(here, line[len("gitdir:") :].strip()))
            return None
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _read_ref(git_dir: str, common: str, ref: str) -> str | None:
    for folder in (git_dir, common):
        loose = os.path.join(folder, *ref.split("/"))
        if os.path.isfile(loose):
            with open(loose, encoding="utf-8") as handle:
                value = handle.read().strip()
            if value.startswith("ref:"):
                return _read_ref(git_dir, common, value[4:].strip())
            return value
    packed = os.path.join(common, "packed-refs")
    if os.path.isfile(packed):
        with open(packed, encoding="utf-8") as handle:
            for line in handle:
                parts = line.strip().split(" ", 1)
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    return None


def read_git_head(path: str) -> str | None:
    """The commit HEAD names, read from the .git folder without running git (loose refs,
    packed refs, worktrees); None when ``path`` is not in a repository or HEAD is unborn."""
    git_dir = _git_dir(path)
    if git_dir is None:
        return None
    common = git_dir
    commondir = os.path.join(git_dir, "commondir")
    if os.path.isfile(commondir):
        with open(commondir, encoding="utf-8") as handle:
            common = os.path.normpath(os.path.join(git_dir, handle.read().strip()))
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as handle:
            head = handle.read().strip()
    except OSError:
        return None
    commit = _read_ref(git_dir, common, head[4:].strip()) if head.startswith("ref:") else head
    return commit if commit and _HEX40.match(commit) else None


def _git(path: str, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", path, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _strip_credentials(url: str) -> str:
    # A remote URL may carry a token (https://user:token@host/...); a signed record must not.
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url.strip())


def code_revision(path: str) -> CodeRevision:
    """The commit checked out in the repository at ``path`` (``git rev-parse HEAD``, or the
    .git folder read directly where git cannot run); local only, never the network."""
    if not os.path.isdir(path):
        raise InputError(f"{path}: not a folder", fix="Pass the training code's folder to --code.")
    out = _git(path, "rev-parse", "HEAD")
    commit = out.strip() if out else read_git_head(path)
    if not commit or not _HEX40.match(commit):
        raise InputError(
            f"{path} is not a git repository with a commit checked out",
            fix="Commit the training code first, or leave --code out.",
        )
    status = _git(path, "status", "--porcelain", "--untracked-files=no")
    remote = _git(path, "config", "--get", "remote.origin.url")
    return CodeRevision(
        path=path,
        commit=commit,
        dirty=None if status is None else bool(status.strip()),
        uri=f"git+{_strip_credentials(remote)}" if remote and remote.strip() else None,
    )


def environment_packages() -> tuple[str, ...]:
    """Every installed distribution as ``name==version``, sorted (the first of a name wins,
    as an import would)."""
    import importlib.metadata

    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return tuple(seen[key] for key in sorted(seen))


# --- the statement ---------------------------------------------------------------------------


def _json_object(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(value), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise OptionsError(
            f"{what} are not JSON values: {exc}",
            fix=f"Give {what} as strings, numbers, booleans, lists or objects (no NaN).",
        ) from exc


@dataclass(frozen=True)
class TrainingRun:
    """What a person tells ``record``: the output model and everything that produced it."""

    model_path: str
    datasets: tuple[str, ...] = ()
    base_model: str | None = None
    code: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    started_on: str | None = None
    finished_on: str | None = None
    builder_id: str = DEFAULT_BUILDER_ID
    environment: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "parameters", _json_object(self.parameters, "parameters"))
        object.__setattr__(self, "metrics", _json_object(self.metrics, "metrics"))
        for label, value in (("--started", self.started_on), ("--finished", self.finished_on)):
            if value is not None and not _TIMESTAMP.match(value):
                raise OptionsError(
                    f"{label} {value!r} is not an RFC 3339 UTC time",
                    fix=f"Write {label} 2026-01-31T12:00:00Z (UTC, with the Z).",
                )


@dataclass(frozen=True)
class ProvenanceRecord:
    """A recorded training run: the signed statement, where it was written, what it names."""

    output_path: str
    signer: str
    model_name: str
    root_digest: str
    run_id: str
    datasets: tuple[Input, ...]
    base_model: Input | None
    code: CodeRevision | None
    statement: Mapping[str, Any]
    bundle: Bundle
    log_index: int | None = None

    @property
    def bundle_digest(self) -> str:
        """SHA-256 of the bundle as written: how a log entry points at it."""
        return hashlib.sha256(self.bundle.to_json().encode("utf-8")).hexdigest()

    def evidence(self) -> EvidenceEntry:
        """The log entry for this run: the model as subject, the inputs by digest."""
        inputs = [
            {"role": item.role, "name": item.name, "digest": {"sha256": item.digest}}
            for item in (*self.datasets, *([self.base_model] if self.base_model else []))
        ]
        predicate = self.statement["predicate"]
        payload: dict[str, Any] = {
            "predicateType": SLSA_PREDICATE_TYPE,
            "runId": self.run_id,
            "builder": predicate["runDetails"]["builder"]["id"],
            "signer": self.signer,
            "inputs": inputs,
            "parameters": predicate["buildDefinition"]["externalParameters"]["parameters"],
            "metrics": dict(self.statement_metrics()),
            "provenance": {"path": self.output_path, "sha256": self.bundle_digest},
        }
        if self.code is not None:
            payload["code"] = {"commit": self.code.commit, "dirty": self.code.dirty}
        return EvidenceEntry(
            EvidenceKind.TRAINING_RUN,
            subjects=(Subject(self.model_name, {"sha256": self.root_digest}),),
            payload=payload,
        )

    def statement_metrics(self) -> Mapping[str, Any]:
        for item in self.statement["predicate"]["runDetails"].get("byproducts", []):
            if item.get("name") == "metrics":
                return dict(item.get("annotations", {}))
        return {}

    def summary(self) -> str:
        lines = [
            f"recorded training run {self.run_id} -> {self.output_path} ({self.signer})",
            f"  model     {self.model_name} sha256:{self.root_digest}",
        ]
        lines += [
            f"  dataset   {d.name} sha256:{d.digest} ({d.files} file{'s' * (d.files != 1)})"
            for d in self.datasets
        ]
        if self.base_model:
            lines.append(f"  base      {self.base_model.name} sha256:{self.base_model.digest}")
        if self.code:
            dirty = {True: " (uncommitted changes)", False: "", None: " (state unknown)"}
            lines.append(f"  code      git {self.code.commit}{dirty[self.code.dirty]}")
        if self.log_index is not None:
            lines.append(f"  log entry #{self.log_index}")
        return "\n".join(lines)


def build_statement(
    run: TrainingRun,
    model: Manifest,
    datasets: Sequence[Input],
    base_model: Input | None,
    code: CodeRevision | None,
    *,
    run_id: str,
    packages: Sequence[str] = (),
    tool_version: str = "",
) -> dict[str, Any]:
    """The in-toto statement with the SLSA Provenance v1 predicate (pure: no I/O)."""
    external: dict[str, Any] = {
        "parameters": dict(run.parameters),
        "datasets": [{"name": d.name, "path": d.path} for d in datasets],
    }
    if base_model is not None:
        external["baseModel"] = {"name": base_model.name, "path": base_model.path}
    if code is not None:
        external["code"] = {"path": code.path, **({"uri": code.uri} if code.uri else {})}
    internal: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
    }
    if run.environment:
        internal["packages"] = list(packages)
    dependencies = [d.descriptor() for d in datasets]
    if base_model is not None:
        dependencies.append(base_model.descriptor())
    if code is not None:
        dependencies.append(code.descriptor())
    metadata: dict[str, Any] = {"invocationId": run_id}
    if run.started_on:
        metadata["startedOn"] = run.started_on
    metadata["finishedOn"] = run.finished_on or _now()
    run_details: dict[str, Any] = {
        "builder": {"id": run.builder_id, "version": {"mlward": tool_version}},
        "metadata": metadata,
    }
    if run.metrics:
        run_details["byproducts"] = [
            {"name": "metrics", "mediaType": "application/json", "annotations": dict(run.metrics)}
        ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": model.model_name,
                "digest": {"sha256": model.root_digest_hex},
                "annotations": {"serialization": model.serialization.to_json()},
            }
        ],
        "predicateType": SLSA_PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": dependencies,
            },
            "runDetails": run_details,
        },
    }


def record(
    run: TrainingRun,
    signer: Signer,
    output_path: str | os.PathLike[str] = DEFAULT_PROVENANCE,
    hashing: HashingOptions | None = None,
    *,
    tool_version: str = "",
) -> ProvenanceRecord:
    """Hash the model and every input, sign the provenance statement, write the bundle.

    Like signing, this reads every byte (the digest cache is refreshed, never trusted). A bundle
    written inside the model folder is left out of the model's digest.
    """
    output = os.fspath(output_path)
    if not os.path.lexists(run.model_path):
        raise InputError(f"{run.model_path}: no such file or directory", fix="Check MODEL_PATH.")
    options = replace(hashing or HashingOptions(), paranoid=True)
    own = path_inside_model(run.model_path, output)
    model = hash_model(run.model_path, options, extra_ignored=[own] if own else [])
    datasets = [hash_input(path, DATASET, hashing) for path in run.datasets]
    base = hash_input(run.base_model, BASE_MODEL, hashing) if run.base_model else None
    code = code_revision(run.code) if run.code else None
    run_id = run.run_id or str(uuid.uuid4())
    packages = environment_packages() if run.environment else ()
    statement = build_statement(
        run,
        model,
        datasets,
        base,
        code,
        run_id=run_id,
        packages=packages,
        tool_version=tool_version,
    )
    bundle = sign_statement(statement, signer)
    bundle.write(output)
    return ProvenanceRecord(
        output_path=output,
        signer=signer.describe(),
        model_name=model.model_name,
        root_digest=model.root_digest_hex,
        run_id=run_id,
        datasets=tuple(datasets),
        base_model=base,
        code=code,
        statement=statement,
        bundle=bundle,
    )


# --- verification ----------------------------------------------------------------------------


class Verifier(Protocol):
    def verify_bundle(self, bundle: Bundle) -> Verified: ...


@dataclass(frozen=True)
class ProvenanceVerification:
    """The outcome of checking a provenance bundle against a model. ``ok`` only when the
    signature holds, the statement is SLSA provenance, and the model hashes to its subject."""

    ok: bool
    model_path: str
    provenance_path: str
    signer: str | None = None
    expected_digest: str | None = None
    actual_digest: str | None = None
    run_id: str | None = None
    inputs: tuple[tuple[str, str, str], ...] = ()
    failure: str | None = None
    message: str = ""
    fix: str = ""

    def summary(self) -> str:
        if self.ok:
            lines = [
                f"verified: {self.model_path} is the output of training run {self.run_id} "
                f"recorded in {self.provenance_path} (signed by {self.signer}; "
                f"sha256:{self.expected_digest})"
            ]
            lines += [f"  {role:<10}{name} sha256:{digest}" for role, name, digest in self.inputs]
            return "\n".join(lines)
        lines = [f"provenance verification FAILED: {self.message}"]
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


def _bad(what: str) -> BundleFormatError:
    return BundleFormatError(
        f"not an SLSA provenance statement: {what}",
        fix="Pass --provenance a file written by mlward provenance record.",
    )


def provenance_subject(statement: Mapping[str, Any]) -> tuple[str, str, Serialization]:
    """(name, sha256 hex, serialization) of a provenance statement's model subject."""
    if statement.get("_type") != STATEMENT_TYPE:
        raise _bad(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != SLSA_PREDICATE_TYPE:
        raise _bad(f"predicateType is {statement.get('predicateType')!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise _bad("it must have exactly one subject (the model)")
    subject = subjects[0]
    name, digests = subject.get("name"), subject.get("digest")
    digest = digests.get("sha256") if isinstance(digests, dict) else None
    if not isinstance(name, str) or not isinstance(digest, str) or not digest:
        raise _bad("the subject has no name or sha256 digest")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict) or not all(
        isinstance(predicate.get(part), dict) for part in ("buildDefinition", "runDetails")
    ):
        raise _bad("the predicate has no buildDefinition and runDetails objects")
    annotations = subject.get("annotations") or {}
    raw = annotations.get("serialization") if isinstance(annotations, dict) else None
    try:
        serialization = Serialization() if raw is None else Serialization.from_json(raw)
    except ValueError as exc:
        raise _bad(str(exc)) from exc
    return name, digest, serialization


def statement_inputs(statement: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """(role, name, sha256) of each hashed input a provenance statement lists."""
    predicate = statement.get("predicate")
    definition = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    items = definition.get("resolvedDependencies") if isinstance(definition, dict) else None
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        annotations = item.get("annotations") or {}
        digest = (item.get("digest") or {}).get("sha256")
        role = annotations.get("mlward.role") if isinstance(annotations, dict) else None
        if isinstance(digest, str) and role in (DATASET, BASE_MODEL):
            found.append((str(role), str(item.get("name", "")), digest))
    return tuple(found)


def verify(
    model_path: str | os.PathLike[str],
    provenance_path: str | os.PathLike[str],
    verifier: Verifier,
    hashing: HashingOptions | None = None,
) -> ProvenanceVerification:
    """Check the bundle's signature, then that the model on disk hashes to its subject."""
    model, provenance = os.fspath(model_path), os.fspath(provenance_path)
    base = ProvenanceVerification(ok=False, model_path=model, provenance_path=provenance)
    if not os.path.lexists(model):
        raise InputError(f"{model}: no such file or directory", fix="Check MODEL_PATH.")
    try:
        bundle = read_bundle(provenance)
        verified = verifier.verify_bundle(bundle)
        if verified.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise _bad(f"the envelope carries {verified.payload_type}")
        statement = parse_statement(verified.payload)
        name, expected, serialization = provenance_subject(statement)
    except VerificationFailure as exc:
        return replace(base, failure=exc.kind, message=exc.message, fix=exc.fix)
    except BundleFormatError as exc:
        return replace(base, failure=MALFORMED, message=exc.message, fix=exc.fix)
    options = hashing or HashingOptions()
    redo = HashingOptions.for_serialization(
        serialization,
        allow_symlinks=options.allow_symlinks,
        ignore_paths=(*options.ignore_paths, *serialization.ignore_paths),
        ignore_git_paths=options.ignore_git_paths,
        jobs=options.jobs,
        cache=options.cache,
        cache_path=options.cache_path,
        paranoid=options.paranoid,
    )
    own = path_inside_model(model, provenance)
    actual = hash_model(model, redo, extra_ignored=[own] if own else []).root_digest_hex
    metadata = statement["predicate"]["runDetails"].get("metadata")
    found = replace(
        base,
        signer=verified.signer,
        expected_digest=expected,
        actual_digest=actual,
        run_id=str(metadata.get("invocationId")) if isinstance(metadata, dict) else None,
        inputs=statement_inputs(statement),
    )
    if actual != expected:
        return replace(
            found,
            failure=CONTENT_MISMATCH,
            message=(
                f"the model is not the one this training run produced: the provenance names "
                f"{name} sha256:{expected}, but {model} hashes to sha256:{actual}"
            ),
            fix="Check the model against its signature (mlward verify) to see which files "
            "changed; record the run again if the model was retrained on purpose.",
        )
    return replace(found, ok=True)


# --- lineage from the evidence log ------------------------------------------------------------

MODEL, RUN, SIGNATURE, DECISION, EVIDENCE = "model", "run", "signature", "decision", "evidence"
_NODE_KINDS = (DATASET, RUN, MODEL, SIGNATURE, DECISION, EVIDENCE)
_EDGE_FOR_KIND = {
    EvidenceKind.SIGNATURE: (SIGNATURE, "signed"),
    EvidenceKind.GATE_DECISION: (DECISION, "decided"),
}
# Payload keys a summary line picks from, in this order.
_SUMMARY_KEYS = (
    "decision",
    "verdict",
    "result",
    "outcome",
    "status",
    "policy",
    "gate",
    "signer",
    "method",
    "signature",
    "tool",
    "rows",
    "files",
)


@dataclass(frozen=True)
class LineageNode:
    """One thing in the chain: a dataset, a run, a model, a signature, a decision, evidence."""

    id: str
    kind: str
    label: str
    digest: str | None = None
    log_index: int | None = None
    timestamp: str | None = None
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LineageEdge:
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Lineage:
    """The chain found in a log for one model root digest; nodes in chain order."""

    model_digest: str
    model_path: str | None
    log: str
    entries_read: int
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    skipped: tuple[int, ...] = ()

    def node(self, node_id: str) -> LineageNode:
        return next(n for n in self.nodes if n.id == node_id)

    def of_kind(self, kind: str) -> tuple[LineageNode, ...]:
        return tuple(n for n in self.nodes if n.kind == kind)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _payload_summary(payload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    picked = [(key, _scalar(payload[key])) for key in _SUMMARY_KEYS if key in payload]
    return tuple((key, value if len(value) <= 80 else value[:77] + "...") for key, value in picked)


def _sha256s(entry: EvidenceEntry) -> set[str]:
    return {s.digest["sha256"] for s in entry.subjects if "sha256" in s.digest}


def _run_inputs(entry: EvidenceEntry) -> list[tuple[str, str, str]]:
    """(role, name, sha256) of a training run entry's inputs: mlward's ``inputs``, or a
    ``datasets`` list of {name, digest} that other tools write."""
    found: list[tuple[str, str, str]] = []
    for key, default_role in (("inputs", DATASET), ("datasets", DATASET)):
        items = entry.payload.get(key)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            digest = item.get("digest")
            sha = digest.get("sha256") if isinstance(digest, dict) else digest
            if isinstance(sha, str) and sha.startswith("sha256:"):
                sha = sha[len("sha256:") :]
            if isinstance(sha, str) and sha:
                role = item.get("role") if item.get("role") in (DATASET, BASE_MODEL) else None
                found.append((role or default_role, str(item.get("name", "")), sha))
    return found


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self.edges: dict[tuple[str, str], LineageEdge] = {}

    def add(self, node: LineageNode) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, label: str) -> None:
        self.edges.setdefault((source, target), LineageEdge(source, target, label))


def build_lineage(
    entries: Iterable[tuple[int, bytes]],
    model_digest: str,
    *,
    model_path: str | None = None,
    model_name: str | None = None,
    log: str = "",
    max_depth: int = 8,
) -> Lineage:
    """The chain for ``model_digest`` from stored log entries (index, bytes): pure, no I/O.

    Entries are matched by their subjects' SHA-256 digests. A model's training runs give its
    datasets and base model; the base model's own runs are followed up to ``max_depth``
    generations. Entries that are not valid evidence are counted in ``skipped``.
    """
    by_digest: dict[str, list[tuple[int, EvidenceEntry]]] = {}
    skipped: list[int] = []
    count = 0
    for index, body in entries:
        count += 1
        try:
            entry = EvidenceEntry.from_bytes(body)
        except LogError:
            skipped.append(index)
            continue
        for digest in _sha256s(entry):
            by_digest.setdefault(digest, []).append((index, entry))
    graph = _Builder()
    pending = [(model_digest, model_name, 0)]
    seen: set[str] = set()
    while pending:
        digest, name, depth = pending.pop(0)
        if digest in seen:
            continue
        seen.add(digest)
        model_id = _model_node(graph, digest, name, by_digest.get(digest, []))
        for index, entry in by_digest.get(digest, []):
            if entry.kind is EvidenceKind.TRAINING_RUN:
                inputs = _run_inputs(entry)
                if any(item[2] == digest for item in inputs):
                    continue  # a later run that started from this model, not its origin
                run_id = _run_node(graph, index, entry)
                graph.link(run_id, model_id, "produced")
                for role, input_name, input_digest in inputs:
                    if role == BASE_MODEL:
                        base_id = f"model:{input_digest}"
                        if depth < max_depth:
                            pending.append((input_digest, input_name, depth + 1))
                        else:
                            _model_node(graph, input_digest, input_name, [])
                        graph.link(base_id, run_id, "base model")
                    else:
                        data_id = _dataset_node(
                            graph, input_digest, input_name, by_digest.get(input_digest, [])
                        )
                        graph.link(data_id, run_id, "trained on")
            elif entry.kind in (EvidenceKind.DATASET_SNAPSHOT,):
                continue  # a model's digest is not a dataset's
            else:
                node_kind, label = _EDGE_FOR_KIND.get(entry.kind, (EVIDENCE, entry.kind.value))
                node_id = graph.add(_entry_node(node_kind, index, entry))
                graph.link(model_id, node_id, label)
    order = {kind: rank for rank, kind in enumerate(_NODE_KINDS)}
    nodes = sorted(
        graph.nodes.values(),
        key=lambda n: (order[n.kind], n.log_index if n.log_index is not None else -1, n.id),
    )
    return Lineage(
        model_digest=model_digest,
        model_path=model_path,
        log=log,
        entries_read=count,
        nodes=tuple(nodes),
        edges=tuple(graph.edges.values()),
        skipped=tuple(skipped),
    )


def _model_node(
    graph: _Builder, digest: str, name: str | None, entries: list[tuple[int, EvidenceEntry]]
) -> str:
    names = [s.name for _, e in entries for s in e.subjects if s.digest.get("sha256") == digest]
    label = name or (names[0] if names else "model")
    return graph.add(LineageNode(id=f"model:{digest}", kind=MODEL, label=label, digest=digest))


def _dataset_node(
    graph: _Builder, digest: str, name: str, entries: list[tuple[int, EvidenceEntry]]
) -> str:
    details: list[tuple[str, str]] = []
    node_id = f"{DATASET}:{digest}"
    for index, entry in entries:
        if entry.kind is EvidenceKind.DATASET_SNAPSHOT:
            details.append(("snapshot", f"log #{index} {entry.timestamp}"))
            details.extend(_payload_summary(entry.payload))
        elif entry.kind is EvidenceKind.DATASET_AUDIT:
            audit_id = graph.add(_entry_node(EVIDENCE, index, entry))
            graph.link(node_id, audit_id, "audited")
    if not any(e.kind is EvidenceKind.DATASET_SNAPSHOT for _, e in entries):
        details.append(("snapshot", "none in the log"))
    names = [s.name for _, e in entries for s in e.subjects if s.digest.get("sha256") == digest]
    graph.add(
        LineageNode(
            id=node_id,
            kind=DATASET,
            label=name or (names[0] if names else "dataset"),
            digest=digest,
            details=tuple(details),
        )
    )
    return node_id


def _run_node(graph: _Builder, index: int, entry: EvidenceEntry) -> str:
    payload = entry.payload
    details: list[tuple[str, str]] = []
    for key in ("runId", "builder", "signer"):
        if key in payload:
            details.append((key, _scalar(payload[key])))
    code = payload.get("code")
    if isinstance(code, dict) and "commit" in code:
        dirty = " (uncommitted changes)" if code.get("dirty") else ""
        details.append(("code", f"git {code['commit']}{dirty}"))
    for key in ("parameters", "metrics"):
        value = payload.get(key)
        if isinstance(value, dict) and value:
            details.append((key, ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(value.items()))))
    provenance = payload.get("provenance")
    if isinstance(provenance, dict) and "sha256" in provenance:
        details.append(("provenance", f"sha256:{provenance['sha256']}"))
    return graph.add(
        LineageNode(
            id=f"{RUN}:{index}",
            kind=RUN,
            label="training run",
            log_index=index,
            timestamp=entry.timestamp,
            details=tuple(details),
        )
    )


def _entry_node(kind: str, index: int, entry: EvidenceEntry) -> LineageNode:
    return LineageNode(
        id=f"{kind}:{index}",
        kind=kind,
        label=entry.kind.value,
        log_index=index,
        timestamp=entry.timestamp,
        details=_payload_summary(entry.payload),
    )
