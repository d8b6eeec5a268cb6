"""Backdoored-model scan over many seeds: does `model backdoor-scan` name the target of a
BadNets-backdoored digits model, and stay quiet on clean ones?

Usage (from the repo root; ``make bench`` runs it through ``bench/run.sh``)::

    .venv/bin/python bench/model_scan_bench.py [--seeds 400 401 ...] [--archs cnn mlp]

Per seed, a victim of each architecture is trained (torch, CPU) on a BadNets-poisoned digits
training set (10% poison; the trigger shape, position and target change with the seed) and
another on the clean training set; each is scanned with the clean test split as the sample.
``cnn`` is a two-layer conv net, ``mlp`` one hidden layer over the raw pixels. A verdict is
right when the backdoored model's target is named alone and the clean model is not flagged;
"inconclusive" (the twin has a natural universal patch) is counted apart, neither right nor a
false alarm. Results go to ``bench/results/model-scan-<timestamp>.json``.

Exit code: 0 when no clean model is flagged and every backdoored CNN's target is named.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from mlward.api import backdoor_scan  # noqa: E402
from mlward.data import scenarios as sc  # noqa: E402
from mlward.data.features import model_input  # noqa: E402

TRIGGERS = (
    ("square", "bottom-right"),
    ("checker", "top-left"),
    ("cross", "centre"),
    ("line", "bottom-left"),
    ("square", "top-right"),
)


def train(scenario: sc.Scenario, arch: str, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    if arch == "cnn":
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(256, 10),
        )
    else:
        model = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )
    x = model_input(scenario.train)
    y = torch.as_tensor(scenario.train.y)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def attack_success(model: Any, scenario: sc.Scenario) -> float:
    import torch

    rows = torch.as_tensor(scenario.triggered_test, dtype=torch.float32).reshape(-1, 1, 8, 8)
    with torch.no_grad():
        return float((model(rows).argmax(dim=1) == scenario.target).float().mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[400, 401, 402, 403, 404])
    parser.add_argument("--archs", nargs="+", choices=("cnn", "mlp"), default=["cnn", "mlp"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows: list[dict[str, object]] = []
    print(f"{'model':18} {'trigger':22} {'target':>6} {'ASR':>5} {'verdict':>13} {'time s':>6}")
    for seed in args.seeds:
        trigger, position = TRIGGERS[seed % len(TRIGGERS)]
        target = (seed * 3 + 1) % 10
        for arch in args.archs:
            poisoned = sc.badnets(
                rate=0.1, seed=seed, trigger=trigger, position=position, target=target
            )
            for kind, scenario in (("backdoored", poisoned), ("clean", sc.clean(seed=seed))):
                model = train(scenario, arch, seed)
                started = time.perf_counter()
                result = backdoor_scan(model, scenario.test)
                seconds = time.perf_counter() - started
                if result.inconclusive:
                    verdict = "inconclusive"
                elif kind == "backdoored":
                    verdict = "named" if result.suspected == (target,) else "missed"
                else:
                    verdict = "false alarm" if result.backdoored else "clean"
                asr = attack_success(model, poisoned) if kind == "backdoored" else None
                rows.append(
                    {
                        "seed": seed,
                        "arch": arch,
                        "kind": kind,
                        "trigger": f"{trigger}/{position}",
                        "target": target if kind == "backdoored" else None,
                        "attack_success": asr,
                        "suspected": list(result.suspected),
                        "inconclusive": result.inconclusive,
                        "verdict": verdict,
                        "seconds": round(seconds, 1),
                    }
                )
                print(
                    f"{arch + ' ' + kind + ' s' + str(seed):18} "
                    f"{(trigger + '/' + position) if kind == 'backdoored' else '-':22} "
                    f"{target if kind == 'backdoored' else '-':>6} "
                    f"{'-' if asr is None else f'{asr:.2f}':>5} {verdict:>13} {seconds:6.1f}",
                    flush=True,
                )
    counts: dict[str, int] = {}
    for r in rows:
        key = f"{r['arch']} {r['kind']} {r['verdict']}"
        counts[key] = counts.get(key, 0) + 1
    print()
    for key in sorted(counts):
        print(f"{key}: {counts[key]}")
    out = BENCH / "results" / f"model-scan-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    failed = any(r["verdict"] == "false alarm" for r in rows) or any(
        r["arch"] == "cnn" and r["kind"] == "backdoored" and r["verdict"] != "named" for r in rows
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
