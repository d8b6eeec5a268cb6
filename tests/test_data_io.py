"""Dataset readers, features by hook, the CLI, snapshots and diffs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from mlward.api import audit_data, diff_data, read_dataset, snapshot_data
from mlward.cli.main import main
from mlward.data import scenarios as sc
from mlward.data.snapshot import JsonLinesStore
from mlward.errors import InputError


@pytest.fixture(scope="module")
def poisoned() -> sc.Scenario:
    return sc.badnets(rate=0.05, seed=3)


def _save_npz(path: Path, scenario: sc.Scenario) -> Path:
    np.savez(path, x=scenario.train.x.reshape(-1, 8, 8), y=scenario.train.y)
    return path


def test_npz_npy_csv_parquet_images_read_the_same_rows(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("fastparquet")
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 16, size=(12, 4, 4)).astype(np.float64)
    y = np.array([0, 1, 2] * 4)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    frame = pd.DataFrame(x.reshape(12, -1), columns=[f"p{i}" for i in range(16)])
    frame["label"] = y
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    for label in range(3):
        os.makedirs(tmp_path / "img" / str(label))
    for i in range(12):
        image.fromarray(x[i].astype(np.uint8), mode="L").save(
            tmp_path / "img" / str(y[i]) / f"{i:02d}.png"
        )
    npz = read_dataset(tmp_path / "d.npz")
    assert npz.image_shape == (4, 4)
    npy = read_dataset(tmp_path / "x.npy", labels=str(tmp_path / "y.npy"))
    csv = read_dataset(tmp_path / "d.csv")
    parquet = read_dataset(tmp_path / "d.parquet", label="label")
    for data in (npy, csv, parquet):
        assert np.array_equal(data.x, npz.x) and np.array_equal(data.y, npz.y)
    folder = read_dataset(tmp_path / "img")
    order = np.argsort(y, kind="stable")
    assert np.array_equal(folder.x, npz.x[order])
    assert folder.row_names[0] == "0/00.png"


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickle"):
        read_dataset(tmp_path / "bad.npy", labels=str(tmp_path / "bad.npy"))


def test_missing_label_column_says_which_flag(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(InputError) as info:
        read_dataset(tmp_path / "d.csv")
    assert "--label" in info.value.fix


def test_cli_audit_json_lists_flagged_rows_in_input_order(
    tmp_path: Path, poisoned: sc.Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save_npz(tmp_path / "p.npz", poisoned)
    out = tmp_path / "filtered.npz"
    code = main(["data", "audit", str(path), "--format", "json", "--write-filtered", str(out)])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    rows = report["flagged_rows"]
    assert rows == sorted(rows)
    truth = set(np.flatnonzero(poisoned.poisoned).tolist())
    assert len(truth & set(rows)) >= 0.95 * len(truth)
    samples = {s["row"]: s for s in report["samples"]}
    assert all(samples[r]["poison"] and samples[r]["score"] > 0 for r in rows)
    poisoned_classes = [c["label"] for c in report["classes"] if c["state"] == "poisoned"]
    assert poisoned_classes == [poisoned.target]
    assert report["removed_rows"] == [r for r in rows if r not in report["review_rows"]]
    assert all(samples[r]["review"] for r in report["review_rows"])
    kept = np.load(out)
    assert len(kept["y"]) == len(poisoned.train) - len(report["removed_rows"])


def test_cli_filtered_dataset_keeps_review_rows_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = sc.tabular_backdoor("breast_cancer", rate=0.05)
    path = tmp_path / "t.npz"
    np.savez(path, x=scenario.train.x, y=scenario.train.y)
    out = tmp_path / "kept.npz"
    assert main(["data", "audit", str(path), "--write-filtered", str(out)]) == 1
    captured = capsys.readouterr()
    assert "label errors to review (2;" in captured.out
    assert "\n  36: label-noise" in captured.out and "\n  169: label-noise" in captured.out
    assert "keeping 2 rows listed for review" in captured.err
    # The filter removes exactly the poisoned rows; the two clean rows that look mislabelled
    # stay (removing them triples the trigger's natural pull on retrained victims).
    kept = np.load(out)
    assert len(kept["y"]) == len(scenario.train) - int(scenario.poisoned.sum())
    repaired = tmp_path / "repaired.npz"
    main(["data", "audit", str(path), "--write-repaired", str(repaired)])
    assert "20 trigger carriers relabelled" in capsys.readouterr().err
    fixed = np.load(repaired)
    # Nothing removed but the poisoned rows, and they are back, each under its own class.
    assert np.array_equal(fixed["x"], scenario.train.x)
    assert np.array_equal(fixed["y"], scenario.clean_train.y)
    both = tmp_path / "both.npz"
    main(["data", "audit", str(path), "--write-filtered", str(both), "--drop-review"])
    assert len(np.load(both)["y"]) == len(kept["y"]) - 2


def test_cli_clean_data_with_natural_label_errors_passes_and_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Clean digits hold a few rows that look mislabelled (5s written like 9s): listed for
    # review, not poison, so the gate passes.
    scenario = sc.clean("digits")
    path = tmp_path / "clean.npz"
    np.savez(path, x=scenario.train.x, y=scenario.train.y)
    assert main(["data", "audit", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["flagged_rows"] == [] and not report["poisoned"]
    assert report["reference_model"] == "a logistic regression"
    assert report["review_rows"]
    samples = {s["row"]: s for s in report["samples"]}
    assert all(samples[r]["review"] and not samples[r]["poison"] for r in report["review_rows"])
    assert all(c["state"] == "clean" for c in report["classes"])


def test_cli_audit_text_names_the_poisoned_class(
    tmp_path: Path, poisoned: sc.Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save_npz(tmp_path / "p.npz", poisoned)
    assert main(["data", "audit", str(path)]) == 1
    text = capsys.readouterr().out
    assert f"class {poisoned.target} looks poisoned" in text
    assert "reference model: a logistic regression" in text.splitlines()[0]


def test_cli_audit_names_the_mixture_reference_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = sc.clean("synthetic", seed=0)
    np.savez(tmp_path / "s.npz", x=scenario.train.x, y=scenario.train.y)
    assert main(["data", "audit", str(tmp_path / "s.npz"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["reference_model"].startswith(
        "a Gaussian mixture per class"
    )


def test_snapshot_store_round_trip(tmp_path: Path, poisoned: sc.Scenario) -> None:
    store = JsonLinesStore(tmp_path / "s" / "snapshots.jsonl")
    snap, where = snapshot_data(poisoned.train, store=store)
    again, _ = snapshot_data(poisoned.train, store=store)
    assert snap.digest == again.digest and where == store.path
    assert store.get(snap.digest) is not None
    assert len({s.digest for s in snap.samples}) <= snap.rows
    relabelled = poisoned.train.subset(np.arange(len(poisoned.train), dtype=np.intp))
    relabelled.y[0] = (relabelled.y[0] + 1) % 10
    other, _ = snapshot_data(relabelled, store=store)
    assert other.digest != snap.digest
    assert other.samples[0].digest != snap.samples[0].digest
    assert other.samples[1:] == snap.samples[1:]


def test_diff_reports_every_added_removed_changed_and_relabelled_row() -> None:
    base = sc.clean(seed=4).train
    rng = np.random.default_rng(4)
    n = len(base)
    removed = set(rng.choice(n, size=7, replace=False).tolist())
    keep = np.array([i for i in range(n) if i not in removed], dtype=np.intp)
    new = base.subset(keep)
    x, y = new.x.copy(), new.y.copy()
    relabel = rng.choice(len(keep), size=9, replace=False)
    y[relabel] = (y[relabel] + 1) % 10
    changed = np.setdiff1d(np.arange(len(keep)), relabel)[:5]
    x[changed, 0] += 3.0
    trigger = sc.badnets(rate=0.08, seed=4)
    extra = np.flatnonzero(trigger.poisoned)
    x = np.vstack([x, trigger.train.x[extra]])
    y = np.concatenate([y, trigger.train.y[extra]])
    from mlward.data.dataset import Dataset

    after = Dataset(x, y, "new")
    result = diff_data(base, after)
    assert set(result.removed) == removed
    assert {(o, n_) for o, n_, _, _ in result.relabelled} == {
        (int(keep[j]), int(j)) for j in relabel
    }
    assert {n_ for _, n_ in result.changed} == set(changed.tolist())
    assert set(result.added) == set(range(len(keep), len(keep) + len(extra)))
    assert result.added_audit is not None
    caught = set(result.added_audit.suspicious_rows) & set(result.added)
    assert len(caught) >= 0.9 * len(extra)
    counts = {c: (a, b) for c, a, b in result.class_counts}
    assert counts[str(trigger.target)][1] > counts[str(trigger.target)][0]
    # The added carriers come with the class each looked like before the trigger; what the
    # scoped report restores or keeps for review arrived in this version.
    restored = dict(result.added_audit.restored_labels)
    arrived = set(result.added) | {n_ for _, n_ in result.changed}
    arrived |= {n_ for _, n_, _, _ in result.relabelled}
    assert len(restored) >= 0.9 * len(extra) and set(restored) <= arrived
    truth = trigger.clean_train.y[extra]
    right = sum(restored.get(len(keep) + i) == int(t) for i, t in enumerate(truth))
    assert right >= 0.9 * len(extra)
    assert set(result.added_audit.review_rows) <= arrived


def test_cli_snapshot_and_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = sc.clean(seed=5)
    old = tmp_path / "old.npz"
    np.savez(old, x=clean.train.x, y=clean.train.y)
    y = clean.train.y.copy()
    y[:3] = (y[:3] + 1) % 10
    new = tmp_path / "new.npz"
    np.savez(new, x=clean.train.x[5:], y=y[5:])
    store = tmp_path / "store.jsonl"
    assert main(["data", "snapshot", str(old), "--store", str(store)]) == 0
    assert "sha256:" in capsys.readouterr().out
    main(["data", "diff", str(old), str(new), "--format", "json", "--no-audit"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["removed"] == [0, 1, 2, 3, 4]
    assert doc["added"] == []


def test_torch_penultimate_features_by_hook(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    scenario = sc.badnets(rate=0.1, seed=6)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(64, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
        torch.nn.Softmax(dim=1),  # a trailing layer without weights: not the classifier
    )
    path = tmp_path / "model.pt"
    torch.save(model, path)
    from mlward.data.features import model_input, penultimate

    features = penultimate(model, model_input(scenario.train), 10)
    assert features.shape == (len(scenario.train), 32)
    report = audit_data(scenario.train, model=path)
    assert report.feature_source.startswith("penultimate activations")
    assert report.features == 32
