"""ML-BOM: a CycloneDX 1.6 JSON document for a model folder, built with cyclonedx-python-lib.

What goes in, and where it comes from (nothing is guessed):

- one ``machine-learning-model`` component; its SHA-256 hash is the model's OMS root digest
  (the same identifier ``mlward sign`` signs), with the file count and scan verdict as
  properties;
- ``modelCard`` fields only from what the folder says: ``config.json`` (Hugging Face
  ``architectures`` and ``model_type``), the README's front matter (``pipeline_tag``,
  ``license``, ``datasets``) and its "intended uses" and "limitations" sections, and metrics
  from a provenance statement;
- ``data`` components for datasets hashed from ``--dataset`` paths (full content) or named in a
  provenance statement (its recorded digests), and the base model as the model's pedigree;
- ``library`` components with ``pkg:pypi`` purls for the packages the model's pickles import
  (the scanner's imports, module -> distribution through ``packages_distributions``), with the
  installed version when there is one.

cyclonedx-python-lib (the ``bom`` extra) is imported only here and only when a BOM is built.
Its 11.x model has no ``modelCard`` or component ``data`` yet, so those two are added to the
serialized document; the result is then checked with the library's strict 1.6 JSON validator,
and a document that does not validate is never returned.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mlward.errors import InputError
from mlward.provenance.errors import BundleFormatError, MissingExtraError
from mlward.provenance.hashing import HashingOptions, hash_model
from mlward.provenance.lineage import (
    BASE_MODEL,
    DATASET,
    Input,
    hash_input,
    provenance_subject,
    statement_inputs,
)
from mlward.provenance.oms import parse_statement, read_bundle

DIGEST_METHOD = "oms-root-sha256"
_README_NAMES = ("README.md", "readme.md", "README.MD", "MODEL_CARD.md", "model_card.md")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_USE_HEADINGS = ("intended use", "intended uses", "uses", "use cases", "direct use")
_LIMIT_HEADINGS = ("limitations", "bias, risks, and limitations", "risks and limitations")


@dataclass(frozen=True)
class Library:
    """A Python distribution the model's pickles import."""

    name: str
    version: str | None
    modules: tuple[str, ...]
    imports: tuple[str, ...]

    @property
    def purl(self) -> str | None:
        if not self.version:
            return None
        # Percent-encoded as packageurl does ("2.13.0+cpu" -> "2.13.0%2Bcpu").
        return f"pkg:pypi/{_normalize(self.name)}@{quote(self.version, safe=':')}"


@dataclass(frozen=True)
class ModelCardFacts:
    """Model card fields found in the folder, each with the file it came from."""

    task: str | None = None
    architecture_family: str | None = None
    model_architecture: str | None = None
    license: str | None = None
    description: str | None = None
    card_datasets: tuple[str, ...] = ()
    use_cases: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class BomResult:
    """A validated CycloneDX 1.6 document and what it lists."""

    document: str
    model_name: str
    root_digest: str
    libraries: tuple[Library, ...]
    datasets: tuple[Input, ...]
    unresolved_modules: tuple[str, ...]
    card: ModelCardFacts = field(default_factory=ModelCardFacts)

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.document)
        return value

    def summary(self) -> str:
        parts = [
            f"ML-BOM for {self.model_name} (sha256:{self.root_digest}): "
            f"{len(self.libraries)} libraries, {len(self.datasets)} datasets; "
            "valid CycloneDX 1.6"
        ]
        if self.unresolved_modules:
            parts.append(
                "not installed here (listed without a version): "
                + ", ".join(self.unresolved_modules)
            )
        return "; ".join(parts)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- libraries from the scanner's imports ---------------------------------------------------


def libraries_for(
    imports: Iterable[str],
    distributions: Mapping[str, Sequence[str]] | None = None,
) -> tuple[tuple[Library, ...], tuple[str, ...]]:
    """(libraries, unresolved top-level modules) for the globals pickles import.

    Standard-library modules are left out. A module no installed distribution provides is
    returned as unresolved; it is still listed, under its module name, without a version.
    """
    table = distributions if distributions is not None else _packages_distributions()
    by_dist: dict[str, tuple[set[str], set[str]]] = {}
    unresolved: dict[str, set[str]] = {}
    for name in imports:
        top = name.split(".", 1)[0].split(" ", 1)[0]
        if not top or top in sys.stdlib_module_names or top in sys.builtin_module_names:
            continue
        dists = table.get(top)
        if dists:
            modules, names = by_dist.setdefault(dists[0], (set(), set()))
            modules.add(top)
            names.add(name)
        else:
            unresolved.setdefault(top, set()).add(name)
    libraries = [
        Library(dist, _version(dist), tuple(sorted(mods)), tuple(sorted(names)))
        for dist, (mods, names) in by_dist.items()
    ]
    libraries += [
        Library(top, None, (top,), tuple(sorted(names))) for top, names in unresolved.items()
    ]
    return tuple(sorted(libraries, key=lambda lib: _normalize(lib.name))), tuple(sorted(unresolved))


def _packages_distributions() -> Mapping[str, Sequence[str]]:
    return importlib.metadata.packages_distributions()


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- model card facts ------------------------------------------------------------------------


def _read_text(path: str, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def _front_matter(text: str) -> dict[str, Any]:
    """Top-level ``key: value`` and list entries of a YAML front matter block (the subset a
    Hugging Face model card uses for these fields); nested mappings are skipped."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}
    found: dict[str, Any] = {}
    key: str | None = None
    for line in match.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if value.startswith("[") and value.endswith("]"):
                found[key] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
            elif value:
                found[key] = _unquote(value)
            else:
                found[key] = []
        elif key is not None and line.lstrip().startswith("- ") and isinstance(found[key], list):
            item = line.lstrip()[2:].strip()
            if ":" not in item:
                found[key].append(_unquote(item))
    return found


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _sections(body: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs or bullet items) of a Markdown body."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            sections[-1][1].append(" ".join(paragraph))
            paragraph.clear()

    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            flush()
            sections.append((line.lstrip("#").strip().lower(), []))
        elif not line:
            flush()
        elif line.startswith(("- ", "* ")):
            flush()
            paragraph.append(line[2:].strip())
            flush()
        else:
            paragraph.append(line)
    flush()
    return sections


def model_card_facts(model_dir: str) -> ModelCardFacts:
    """What ``config.json`` and the README say about the model; empty when neither exists."""
    if not os.path.isdir(model_dir):
        return ModelCardFacts()
    values: dict[str, Any] = {}
    sources: list[str] = []
    config_text = _read_text(os.path.join(model_dir, "config.json"))
    if config_text is not None:
        try:
            config = json.loads(config_text)
        except ValueError:
            config = None
        if isinstance(config, dict):
            architectures = config.get("architectures")
            if (
                isinstance(architectures, list)
                and architectures
                and isinstance(architectures[0], str)
            ):
                values["model_architecture"] = architectures[0]
            if isinstance(config.get("model_type"), str):
                values["architecture_family"] = config["model_type"]
            if values:
                sources.append("config.json")
    for name in _README_NAMES:
        text = _read_text(os.path.join(model_dir, name))
        if text is None:
            continue
        sources.append(name)
        meta = _front_matter(text)
        if isinstance(meta.get("pipeline_tag"), str):
            values["task"] = meta["pipeline_tag"]
        if isinstance(meta.get("license"), str):
            values["license"] = meta["license"]
        datasets = meta.get("datasets")
        if isinstance(datasets, str):
            datasets = [datasets]
        if isinstance(datasets, list):
            values["card_datasets"] = tuple(str(d) for d in datasets if d)
        front = _FRONT_MATTER.match(text)
        body = text[front.end() :] if front else text
        sections = _sections(body)
        first = next((p for _, paragraphs in sections for p in paragraphs), None)
        if first:
            values["description"] = first if len(first) <= 1000 else first[:997] + "..."
        for heading, paragraphs in sections:
            if heading in _USE_HEADINGS and paragraphs:
                values.setdefault("use_cases", tuple(paragraphs))
            if heading in _LIMIT_HEADINGS and paragraphs:
                values.setdefault("limitations", tuple(paragraphs))
        break
    return ModelCardFacts(**values, sources=tuple(sources))


# --- provenance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvenanceFacts:
    """What a provenance statement contributes: its inputs and metrics (signature not checked
    here: ``mlward provenance verify`` does that)."""

    run_id: str | None
    datasets: tuple[tuple[str, str], ...]
    base_model: tuple[str, str] | None
    code_commit: str | None
    metrics: Mapping[str, Any]


def read_provenance(path: str, root_digest: str) -> ProvenanceFacts:
    """Read a provenance bundle and check that its subject is this model."""
    statement = parse_statement(read_bundle(path).payload)
    _, subject_digest, _ = provenance_subject(statement)
    if subject_digest != root_digest:
        raise BundleFormatError(
            f"the provenance {path} is for sha256:{subject_digest}, but the model hashes to "
            f"sha256:{root_digest}",
            fix="Pass the provenance recorded for this model, or record the run again.",
        )
    inputs = statement_inputs(statement)
    predicate = statement.get("predicate", {})
    details = predicate.get("runDetails", {}) if isinstance(predicate, dict) else {}
    metrics: dict[str, Any] = {}
    for item in details.get("byproducts", []) if isinstance(details, dict) else []:
        if isinstance(item, dict) and item.get("name") == "metrics":
            metrics = dict(item.get("annotations") or {})
    commit = None
    definition = predicate.get("buildDefinition", {}) if isinstance(predicate, dict) else {}
    for item in definition.get("resolvedDependencies", []) if isinstance(definition, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("digest"), dict):
            commit = item["digest"].get("gitCommit", commit)
    metadata = details.get("metadata", {}) if isinstance(details, dict) else {}
    bases = [(name, digest) for role, name, digest in inputs if role == BASE_MODEL]
    return ProvenanceFacts(
        run_id=metadata.get("invocationId") if isinstance(metadata, dict) else None,
        datasets=tuple((name, digest) for role, name, digest in inputs if role == DATASET),
        base_model=bases[0] if bases else None,
        code_commit=commit,
        metrics=metrics,
    )


# --- the document ----------------------------------------------------------------------------


def _require_extra() -> None:
    try:
        import cyclonedx  # noqa: F401
        import packageurl  # noqa: F401
    except ImportError:
        raise MissingExtraError("ML-BOMs", "bom", "cyclonedx-python-lib") from None


def build_bom(
    model_dir: str,
    *,
    imports: Iterable[str] = (),
    scan_verdict: str | None = None,
    datasets: Sequence[str] = (),
    provenance: str | None = None,
    hashing: HashingOptions | None = None,
    output: str | None = None,
    distributions: Mapping[str, Sequence[str]] | None = None,
    tool_version: str = "",
) -> BomResult:
    """Build and validate the ML-BOM of a model folder (or file).

    ``imports`` are the globals the model's pickles import (from a scan); ``datasets`` are
    paths hashed in full; ``provenance`` is a bundle from ``mlward provenance record``;
    ``output``, when inside the model folder, is left out of the root digest.
    """
    _require_extra()
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType, Pedigree
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL

    if not os.path.lexists(model_dir):
        raise InputError(f"{model_dir}: no such file or directory", fix="Check MODEL_DIR.")
    own = None
    if output and os.path.isdir(model_dir):
        root, target = os.path.realpath(model_dir), os.path.realpath(output)
        if target.startswith(root + os.sep):
            own = os.path.relpath(target, root).replace(os.sep, "/")
    manifest = hash_model(model_dir, hashing, extra_ignored=[own] if own else [])
    root_digest = manifest.root_digest_hex
    facts = model_card_facts(model_dir)
    hashed = tuple(hash_input(path, DATASET, hashing) for path in datasets)
    recorded = read_provenance(provenance, root_digest) if provenance else None
    libraries, unresolved = libraries_for(imports, distributions)

    def sha256(digest: str) -> HashType:
        return HashType(alg=HashAlgorithm.SHA_256, content=digest)

    def prop(name: str, value: object) -> Property:
        return Property(name=f"mlward:{name}", value=str(value))

    bom = Bom()
    bom.metadata.tools.components.add(
        Component(
            type=ComponentType.APPLICATION,
            name="mlward",
            version=tool_version or None,
            purl=PackageURL(type="pypi", name="mlward", version=tool_version or None),
        )
    )
    model_props = [
        prop("digest-method", DIGEST_METHOD),
        prop("files", len(manifest.paths())),
    ]
    if scan_verdict:
        model_props.append(prop("scan-verdict", scan_verdict))
    if facts.sources:
        model_props.append(prop("model-card-sources", ", ".join(facts.sources)))
    pedigree = None
    if recorded is not None:
        if recorded.run_id:
            model_props.append(prop("training-run", recorded.run_id))
        if recorded.code_commit:
            model_props.append(prop("code-commit", recorded.code_commit))
        if recorded.base_model:
            base_name, base_digest = recorded.base_model
            pedigree = Pedigree(
                ancestors=[
                    Component(
                        type=ComponentType.MACHINE_LEARNING_MODEL,
                        name=base_name or "base-model",
                        bom_ref=f"base-model:{base_digest}",
                        hashes=[sha256(base_digest)],
                        properties=[prop("digest-method", DIGEST_METHOD)],
                    )
                ]
            )
    model_ref = f"model:{root_digest}"
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=manifest.model_name,
        bom_ref=model_ref,
        description=facts.description,
        hashes=[sha256(root_digest)],
        licenses=[LicenseFactory().make_from_string(facts.license)] if facts.license else [],
        properties=model_props,
        pedigree=pedigree,
    )
    bom.components.add(model)
    # (name, digest, properties) of every dataset, hashed ones first; one component per digest.
    data: dict[str, tuple[str, list[Any]]] = {}
    for item in hashed:
        data.setdefault(
            item.digest,
            (
                item.name,
                [
                    prop("digest-method", DIGEST_METHOD),
                    prop("files", item.files),
                    prop("bytes", item.size),
                    prop("digest-source", "hashed"),
                ],
            ),
        )
    for name, digest in recorded.datasets if recorded else ():
        data.setdefault(
            digest,
            (name, [prop("digest-method", DIGEST_METHOD), prop("digest-source", "provenance")]),
        )
    data_refs = []
    for digest, (name, props) in data.items():
        ref = f"data:{digest}"
        data_refs.append((ref, name))
        bom.components.add(
            Component(
                type=ComponentType.DATA,
                name=name or "dataset",
                bom_ref=ref,
                hashes=[sha256(digest)],
                properties=props,
            )
        )
    library_components = []
    for lib in libraries:
        props = [prop("modules", ", ".join(lib.modules))]
        props += [prop("import", name) for name in lib.imports[:50]]
        if len(lib.imports) > 50:
            props.append(prop("imports-not-listed", len(lib.imports) - 50))
        if lib.version is None:
            props.append(prop("installed", "no"))
        package = (
            PackageURL(type="pypi", name=_normalize(lib.name), version=lib.version)
            if lib.version
            else None
        )
        component = Component(
            type=ComponentType.LIBRARY,
            name=_normalize(lib.name) if package else lib.name,
            version=lib.version,
            bom_ref=package.to_string() if package else f"module:{lib.name}",
            purl=package,
            properties=props,
        )
        library_components.append(component)
        bom.components.add(component)
    bom.register_dependency(model, library_components)

    document = json.loads(JsonV1Dot6(bom).output_as_string())
    card = _model_card(facts, data_refs, recorded.metrics if recorded else {})
    for component in document.get("components", []):
        ref = component.get("bom-ref", "")
        if ref == model_ref and card:
            component["modelCard"] = card
        elif ref.startswith("data:"):
            component["data"] = [{"type": "dataset", "name": component["name"]}]
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        # A bug in mlward, not in the input: never hand out an invalid BOM.
        raise RuntimeError(f"mlward built an invalid CycloneDX 1.6 document: {error}")
    return BomResult(
        document=text,
        model_name=manifest.model_name,
        root_digest=root_digest,
        libraries=libraries,
        datasets=hashed,
        unresolved_modules=unresolved,
        card=facts,
    )


def _model_card(
    facts: ModelCardFacts, data_refs: Sequence[tuple[str, str]], metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``modelCard`` object from facts found; empty when nothing was found."""
    parameters: dict[str, Any] = {}
    if facts.task:
        parameters["task"] = facts.task
    if facts.architecture_family:
        parameters["architectureFamily"] = facts.architecture_family
    if facts.model_architecture:
        parameters["modelArchitecture"] = facts.model_architecture
    datasets: list[dict[str, Any]] = [{"ref": ref} for ref, _ in data_refs]
    # Datasets the card names but that were not hashed: listed by name, as the card says.
    known = {name for _, name in data_refs}
    datasets += [
        {"type": "dataset", "name": name} for name in facts.card_datasets if name not in known
    ]
    if datasets:
        parameters["datasets"] = datasets
    card: dict[str, Any] = {}
    if parameters:
        card["modelParameters"] = parameters
    if metrics:
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [
                {"type": name, "value": value if isinstance(value, str) else json.dumps(value)}
                for name, value in sorted(metrics.items())
            ]
        }
    considerations: dict[str, Any] = {}
    if facts.use_cases:
        considerations["useCases"] = list(facts.use_cases)
    if facts.limitations:
        considerations["technicalLimitations"] = list(facts.limitations)
    if considerations:
        card["considerations"] = considerations
    return card
