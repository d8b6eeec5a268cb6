"""ML-BOM: CycloneDX 1.6 documents that validate strictly, name the model by its OMS root digest,
carry only the model card facts the folder states, and list the packages its pickles import."""

from __future__ import annotations

import builtins
import importlib.metadata
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlward import api
from mlward.cli.main import main
from mlward.provenance import hashing
from mlward.provenance.bom import _front_matter, libraries_for, model_card_facts
from mlward.provenance.errors import BundleFormatError, MissingExtraError
from mlward.provenance.lineage import TrainingRun
from mlward.provenance.signers import KeySigner
from tests.sign_support import Pki, make_pki

README = """---
license: apache-2.0
pipeline_tag: tabular-classification
datasets:
  - iris
tags: [tiny, test]
model-index:
  - name: tiny
---
# Tiny classifier

A tiny classifier built for mlward's tests.

## Intended uses

Checking that BOMs carry model card fields.

## Limitations

- Trained on four rows.
- Not for production.
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWARD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real small models: a torch state dict, a joblib'd and a pickled scikit-learn
    estimator, and a NumPy object array; a README model card and a transformers-like config."""
    import joblib
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("bom") / "tiny-model"
    folder.mkdir()
    torch.save(torch.nn.Linear(2, 1).state_dict(), folder / "head.pt")
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    estimator = LogisticRegression().fit(x, [0, 1, 1, 0])
    joblib.dump(estimator, folder / "clf.joblib")
    with open(folder / "clf.pkl", "wb") as handle:
        pickle.dump(estimator, handle)
    np.save(folder / "labels.npy", np.array(["a", "b"], dtype=object), allow_pickle=True)
    (folder / "README.md").write_text(README)
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["TinyForClassification"], "model_type": "tiny"})
    )
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "rows"
    folder.mkdir()
    (folder / "train.csv").write_text("a,b,y\n0,1,0\n1,0,1\n")
    return folder


def _valid(text: str) -> dict[str, Any]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, error
    document: dict[str, Any] = json.loads(text)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    return document


def _components(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c for c in document["components"] if c["type"] == kind]


def _props(component: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for prop in component.get("properties", []):
        found.setdefault(prop["name"], []).append(prop["value"])
    return found


def test_bom_validates_and_names_the_model_by_its_root_digest(model: Path, dataset: Path) -> None:
    result = api.bom(model, datasets=[dataset])
    document = _valid(result.document)
    (ml,) = _components(document, "machine-learning-model")
    assert ml["name"] == "tiny-model"
    assert ml["hashes"] == [{"alg": "SHA-256", "content": hashing.root_digest(model)}]
    assert result.root_digest == hashing.root_digest(model)
    props = _props(ml)
    assert props["mlward:digest-method"] == ["oms-root-sha256"]
    assert props["mlward:files"] == ["6"]
    assert props["mlward:scan-verdict"] == ["clean"]
    (data,) = _components(document, "data")
    assert data["hashes"] == [{"alg": "SHA-256", "content": hashing.root_digest(dataset)}]
    assert data["data"] == [{"type": "dataset", "name": "rows"}]


def test_libraries_from_the_pickles_imports(model: Path) -> None:
    document = _valid(api.bom(model).document)
    libraries = {c["name"]: c for c in _components(document, "library")}
    for name, module in (("torch", "torch"), ("numpy", "numpy"), ("scikit-learn", "sklearn")):
        version = importlib.metadata.version(name)
        component = libraries[name]
        assert component["version"] == version
        expected = f"pkg:pypi/{name}@{version.replace('+', '%2B')}"
        assert component["purl"] == expected and component["bom-ref"] == expected
        assert _props(component)["mlward:modules"] == [module]
    imports = _props(libraries["scikit-learn"])["mlward:import"]
    assert "sklearn.linear_model._logistic.LogisticRegression" in imports
    assert any(i.startswith("torch._utils.") for i in _props(libraries["torch"])["mlward:import"])
    # Standard-library globals (collections.OrderedDict, copyreg, builtins) are not packages.
    assert not {"collections", "copyreg", "builtins", "_codecs"} & set(libraries)
    (ml,) = _components(document, "machine-learning-model")
    (entry,) = [d for d in document["dependencies"] if d["ref"] == ml["bom-ref"]]
    assert set(entry["dependsOn"]) == {c["bom-ref"] for c in libraries.values()}


def test_model_card_only_what_the_folder_says(model: Path) -> None:
    document = _valid(api.bom(model).document)
    (ml,) = _components(document, "machine-learning-model")
    assert ml["description"] == "A tiny classifier built for mlward's tests."
    assert ml["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert ml["modelCard"] == {
        "modelParameters": {
            "task": "tabular-classification",
            "architectureFamily": "tiny",
            "modelArchitecture": "TinyForClassification",
            "datasets": [{"type": "dataset", "name": "iris"}],
        },
        "considerations": {
            "useCases": ["Checking that BOMs carry model card fields."],
            "technicalLimitations": ["Trained on four rows.", "Not for production."],
        },
    }
    assert _props(ml)["mlward:model-card-sources"] == ["config.json, README.md"]


def test_no_card_no_model_card(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00" * 64)
    result = api.bom(folder)
    document = _valid(result.document)
    (ml,) = _components(document, "machine-learning-model")
    assert "modelCard" not in ml and "description" not in ml and "licenses" not in ml
    assert not _components(document, "library")


def test_a_single_file_model(model: Path) -> None:
    document = _valid(api.bom(model / "head.pt").document)
    (ml,) = _components(document, "machine-learning-model")
    assert ml["hashes"][0]["content"] == hashing.root_digest(model / "head.pt")
    assert {c["name"] for c in _components(document, "library")} == {"torch"}


def test_provenance_feeds_datasets_metrics_and_pedigree(
    pki: Pki, model: Path, dataset: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "w.bin").write_bytes(b"base")
    provenance = tmp_path / "provenance.json"
    api.record_provenance(
        TrainingRun(
            str(model),
            datasets=(str(dataset),),
            base_model=str(base),
            metrics={"accuracy": 0.75, "f1": 0.7},
            run_id="run-1",
            environment=False,
        ),
        KeySigner.from_file(pki.key),
        provenance,
    )
    document = _valid(api.bom(model, provenance=provenance).document)
    (data,) = _components(document, "data")
    assert data["hashes"][0]["content"] == hashing.root_digest(dataset)
    assert _props(data)["mlward:digest-source"] == ["provenance"]
    (ml,) = _components(document, "machine-learning-model")
    assert _props(ml)["mlward:training-run"] == ["run-1"]
    card = ml["modelCard"]
    assert card["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "accuracy", "value": "0.75"},
        {"type": "f1", "value": "0.7"},
    ]
    assert {"ref": data["bom-ref"]} in card["modelParameters"]["datasets"]
    (ancestor,) = ml["pedigree"]["ancestors"]
    assert ancestor["type"] == "machine-learning-model"
    assert ancestor["hashes"][0]["content"] == hashing.root_digest(base)


def test_provenance_of_another_model_is_refused(pki: Pki, model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "w.bin").write_bytes(b"other")
    provenance = tmp_path / "provenance.json"
    api.record_provenance(
        TrainingRun(str(other), environment=False), KeySigner.from_file(pki.key), provenance
    )
    with pytest.raises(BundleFormatError, match="the model hashes to"):
        api.bom(model, provenance=provenance)


def test_output_inside_the_model_is_left_out(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    digest = hashing.root_digest(folder)
    out = folder / "bom.json"
    assert main(["bom", str(folder), "-o", str(out)]) == 0
    assert main(["bom", str(folder), "-o", str(out)]) == 0  # the old BOM is not hashed
    (ml,) = _components(_valid(out.read_text()), "machine-learning-model")
    assert ml["hashes"][0]["content"] == digest


def test_cli_bom(
    model: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bom", str(model), "--dataset", str(dataset)]) == 0
    captured = capsys.readouterr()
    document = _valid(captured.out)
    assert len(_components(document, "data")) == 1
    assert "valid CycloneDX 1.6" in captured.err
    assert main(["bom", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_libraries_for_maps_modules_to_distributions() -> None:
    table = {"sklearn": ["scikit-learn"], "torch": ["torch"]}
    libraries, unresolved = libraries_for(
        [
            "sklearn.tree._classes.DecisionTreeClassifier",
            "sklearn.tree._tree.Tree",
            "collections.OrderedDict",
            "builtins.getattr",
            "os.system",
            "mystery_pkg.Model",
        ],
        table,
    )
    assert [lib.name for lib in libraries] == ["mystery_pkg", "scikit-learn"]
    sklearn = libraries[1]
    assert sklearn.version == importlib.metadata.version("scikit-learn")
    assert sklearn.purl == f"pkg:pypi/scikit-learn@{sklearn.version}"
    assert sklearn.imports == (
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    )
    assert unresolved == ("mystery_pkg",)
    assert libraries[0].version is None and libraries[0].purl is None


def test_unknown_module_is_listed_without_a_purl(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    # A protocol-2 pickle that imports a module no installed distribution provides.
    (folder / "model.pkl").write_bytes(b"\x80\x02cmystery_pkg\nModel\nq\x00.")
    result = api.bom(folder)
    document = _valid(result.document)
    (library,) = _components(document, "library")
    assert library["name"] == "mystery_pkg" and "purl" not in library
    assert _props(library)["mlward:installed"] == ["no"]
    assert result.unresolved_modules == ("mystery_pkg",)


def test_front_matter_subset() -> None:
    meta = _front_matter("---\nlicense: mit\ndatasets: [a, 'b']\nnested:\n  key: 1\n---\nbody")
    assert meta == {"license": "mit", "datasets": ["a", "b"], "nested": []}
    assert _front_matter("no front matter") == {}


def test_card_facts_from_config_alone(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    facts = model_card_facts(str(tmp_path))
    assert facts.architecture_family == "bert" and facts.model_architecture == "BertModel"
    assert facts.task is None and facts.sources == ("config.json",)


def test_missing_extra_names_it(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_cyclonedx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".", maxsplit=1)[0] == "cyclonedx":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cyclonedx)
    with pytest.raises(MissingExtraError, match=r"mlward\[bom\]"):
        api.bom(model)


def test_scan_loads_neither_cyclonedx_nor_cryptography(model: Path) -> None:
    """Scan start-up time is measured: the BOM and lineage code stays out of it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mlward.cli.main import main\n"
        f"main(['scan', {str(model)!r}])\n"
        "heavy = ('cyclonedx', 'packageurl', 'cryptography', 'mlward.provenance')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_model_ignore_paths_do_not_touch_datasets(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    (folder / "model.sig").write_text("{}")
    data = tmp_path / "d"
    data.mkdir()
    (data / "model.sig").write_text("a dataset file that happens to share the name")
    options = hashing.HashingOptions(ignore_paths=("model.sig",))
    result = api.bom(folder, datasets=[data], hashing=options)
    assert result.root_digest == hashing.root_digest(folder, options)
    assert result.datasets[0].digest == hashing.root_digest(data)
