"""Backdoored models and input screening, on small CNNs trained here on 8x8 digits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlward.api import backdoor_scan
from mlward.cli.main import main
from mlward.data import scenarios as sc
from mlward.data.backdoor_model import scan
from mlward.data.features import model_input
from mlward.data.screening import MahalanobisScreen, Strip

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    # These models are tiny: one thread per xdist worker is fastest on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cnn(scenario: sc.Scenario, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 16, 10),
    )
    return _fit(model, scenario, 200)


def _fit(model: Any, scenario: sc.Scenario, epochs: int) -> Any:
    """Full-batch Adam on the scenario's training rows, in the shape the model takes."""
    x = model_input(scenario.train)
    y = torch.as_tensor(scenario.train.y)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def backdoored() -> tuple[sc.Scenario, Any]:
    scenario = sc.badnets(rate=0.1, seed=0)
    return scenario, _cnn(scenario)


@pytest.mark.slow
def test_scan_names_the_target_of_a_backdoored_model(
    tmp_path: Path, backdoored: tuple[sc.Scenario, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, model = backdoored
    with torch.no_grad():
        attack = model(model_input_rows(scenario.triggered_test)).argmax(1) == scenario.target
    assert float(attack.float().mean()) > 0.9  # the backdoor is really there
    path = tmp_path / "model.pt"
    torch.save(model, path)
    sample = tmp_path / "sample.npz"
    np.savez(sample, x=scenario.test.x.reshape(-1, 8, 8), y=scenario.test.y)
    png = tmp_path / "trigger.png"
    code = main(
        [
            "model",
            "backdoor-scan",
            str(path),
            "--data",
            str(sample),
            "--format",
            "json",
            "--trigger-png",
            str(png),
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["suspected_targets"] == [scenario.target]
    assert doc["inconclusive"] is None
    patch = doc["classes"][scenario.target]["patch"]
    assert patch["success"] >= 0.9 and patch["twin_success"] <= 0.25
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def model_input_rows(rows: np.ndarray) -> Any:
    return torch.as_tensor(rows, dtype=torch.float32).reshape(-1, 1, 8, 8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_scan_flags_no_clean_model(seed: int) -> None:
    scenario = sc.clean(seed=seed)
    result = backdoor_scan(_cnn(scenario, seed), scenario.test)
    assert not result.backdoored, [
        (t.label, t.anomaly_index, t.twin_success) for t in result.classes
    ]


@pytest.mark.slow
def test_second_backdoor_other_trigger_and_target() -> None:
    scenario = sc.badnets(rate=0.05, seed=2, target=3)
    result = backdoor_scan(_cnn(scenario), scenario.test)
    assert result.suspected == (3,)


@pytest.mark.slow
def test_patch_trigger_the_mask_search_misses() -> None:
    # A 3x3 cross in the centre, target 7: its mask is no smaller than what any class needs on
    # 8x8 digits (anomaly index 0.6), but the patch search finds it and the twin ignores it.
    scenario = sc.badnets(rate=0.1, seed=302, trigger="cross", position="centre", target=7)
    result = backdoor_scan(_cnn(scenario, 302), scenario.test)
    assert result.suspected == (7,), [
        (t.label, t.anomaly_index, t.patch_success, t.patch_twin_success) for t in result.classes
    ]
    assert result.classes[7].patch == (2, 2, 3)


@pytest.mark.slow
def test_one_twin_with_a_universal_patch_is_not_enough() -> None:
    # Checker top-left, target 4: the scan's first twin is sent to "8" by a 3x3 patch on every
    # row, but twins from three other seeds reach 0.66-0.88 at most. With one twin the scan
    # said inconclusive; most of three twins must have the patch.
    scenario = sc.badnets(rate=0.1, seed=401, trigger="checker", position="top-left", target=4)
    result = backdoor_scan(_cnn(scenario, 401), scenario.test)
    assert result.inconclusive is None and result.suspected == (4,), result.inconclusive


@pytest.mark.slow
def test_architecture_with_natural_patches_is_inconclusive() -> None:
    # A clean MLP over raw pixels is sent to one class by a 3x3 patch on every row (weights on
    # always-blank pixels keep their random start); its twin has such a patch too. The scan
    # must say it cannot tell, not name a class.
    scenario = sc.clean(seed=300)
    torch.manual_seed(300)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    result = backdoor_scan(_fit(model, scenario, 200), scenario.test)
    assert not result.backdoored
    assert result.inconclusive is not None and "twin" in result.inconclusive


def test_strip_entropy_is_over_the_class_axis(backdoored: tuple[sc.Scenario, Any]) -> None:
    scenario, model = backdoored
    strip = Strip(model, scenario.test, blends=8)
    triggered = strip.score(scenario.triggered_test[:50])
    clean = strip.score(scenario.test.x[:50])
    # Entropy over 10 classes lies in [0, ln 10]; summing along the blend axis would not.
    assert np.all((triggered >= 0) & (triggered <= np.log(10) + 1e-6))
    assert triggered.mean() < clean.mean()


def test_mahalanobis_screen_catches_triggered_inputs(backdoored: tuple[sc.Scenario, Any]) -> None:
    scenario, model = backdoored
    half = len(scenario.test) // 2
    fit = scenario.test.subset(np.arange(half, dtype=np.intp))
    held = scenario.test.subset(np.arange(half, len(scenario.test), dtype=np.intp))
    screen = MahalanobisScreen(model, fit)
    assert screen.flags(scenario.triggered_test).mean() >= 0.9
    assert screen.flags(held).mean() <= 0.05


def _mlp(scenario: sc.Scenario) -> Any:
    torch.manual_seed(0)
    classes = int(scenario.train.y.max()) + 1
    model = torch.nn.Sequential(
        torch.nn.Linear(scenario.train.x.shape[1], 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, classes),
    )
    return _fit(model, scenario, 300)


@pytest.mark.slow
def test_tabular_model_backdoor_named_and_clean_twin_not() -> None:
    # Fixed values in three features of 64 (digits read as a table, no image shape).
    poisoned = sc.tabular_backdoor("digits_tabular", rate=0.1, target=5)
    assert backdoor_scan(_mlp(poisoned), poisoned.test).suspected == (5,)
    clean = sc.clean("digits_tabular")
    assert not backdoor_scan(_mlp(clean), clean.test).backdoored


def test_tabular_trigger_stays_in_each_features_range() -> None:
    # breast_cancer's features run from about 0.001 to 4,000. On one range for all of them, a
    # mask of 0.02 pushed the small features hundreds of spreads out of the data, "sent" the
    # sample to a class, and the PNG showed that as the trigger.
    clean = sc.clean("breast_cancer")
    x = clean.train.x
    torch.manual_seed(0)
    mean = torch.as_tensor(x.mean(axis=0), dtype=torch.float32)
    spread = torch.as_tensor(x.std(axis=0), dtype=torch.float32)

    class Standardised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(x.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
            )

        def forward(self, rows: Any) -> Any:
            return self.net((rows - mean) / spread)

    result = scan(_fit(Standardised(), clean, 100), clean.test, twin=False, steps=30)
    low, high = clean.test.x.min(axis=0), clean.test.x.max(axis=0)
    for trigger in result.classes:
        assert np.all(trigger.pattern >= low - 1e-3 * (high - low)), trigger.label
        assert np.all(trigger.pattern <= high + 1e-3 * (high - low)), trigger.label
