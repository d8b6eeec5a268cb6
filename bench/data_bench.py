"""Data-poisoning benchmark: mlward's dataset audit against IBM ART 1.20.1, side by side.

Usage (from the repo root; ``make bench`` runs it through ``bench/run.sh``)::

    .venv/bin/python bench/data_bench.py [--held-out] [--no-art] [--scenarios NAME ...]

Every scenario is generated in code from scikit-learn's bundled data (seeded, offline): BadNets
pixel triggers on digits at 5% and 10%, a tabular backdoor (fixed values in three features) on
breast_cancer at 5%, random label flips at 10%, targeted flips of 30% of one class, and clean
controls. ``--held-out`` adds variations nobody tuned on (seeds 100+, other trigger shapes,
positions, blends, rates and data sets); ``--large`` adds a BadNets backdoor, random flips and a
clean control on 11,321 rows (digits with their one-pixel shifts), to see how the audit scales.
``--sweep SEED ...`` runs families of variations over many seeds, mlward alone and detection
scores only (no retraining), and prints the worst and median F1 and the worst share of clean
rows flagged per family.

ART runs in its own venv (``bench/.venvs/art``: ``adversarial-robustness-toolbox==1.20.1``,
with torch pinned to the local CPU wheel first) through ``bench/peer_art.py``: ActivationDefence
and SpectralSignatureDefense with their default settings on a small MLP trained on the
poisoned rows. mlward runs in the dev venv with no poison-rate hint.

For every tool's flagged rows: precision, recall, F1, the share of clean rows flagged (FPR),
and, after removing the flagged rows and retraining the victim model (an MLP; three
initialisations, averaged; for mlward, its filtered dataset: the isolated label errors it
lists for review stay in), the attack
success rate on triggered test rows and the clean test accuracy, next to a victim trained on
the unpoisoned training set ("ASR clean": how often the trigger alone, with no backdoor, sends
rows to the target; "ASR ideal": victims trained without exactly the poisoned rows, what a
perfect filter would leave, and "acc ideal" their clean accuracy; "acc base": the unpoisoned
victim's clean accuracy). "ASR rep" and
"acc rep": victims retrained on mlward's repaired dataset (``--write-repaired``: the filtered
rows plus the trigger carriers under the class they look like without the trigger), the output
mlward's acceptance targets are checked on. Results go to
``bench/results/data-<timestamp>.json``.

Exit code: 0 when mlward meets every acceptance target on the main scenarios, 1 when it misses
one, 2 when the harness failed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from mlward.api import audit_data  # noqa: E402
from mlward.data import audit  # noqa: E402
from mlward.data import scenarios as sc  # noqa: E402

ART_PIN = "adversarial-robustness-toolbox==1.20.1"
# ART imports these without declaring them (packaging) or needs them for its sklearn paths.
ART_UNDECLARED = ("packaging", "scikit-learn")
TORCH_PIN = "torch==2.13.0"
ART_VENV = BENCH / ".venvs" / "art"
# Victim networks per measurement, averaged: one initialisation moves a small test set (wine:
# 54 rows, about 1.9 points a row) by a row or two either way.
VICTIM_SEEDS = (0, 1, 2)

MAIN: dict[str, tuple[str, Callable[[], sc.Scenario]]] = {
    "badnets-5%": ("backdoor", lambda: sc.badnets(rate=0.05)),
    "badnets-10%": ("backdoor", lambda: sc.badnets(rate=0.10)),
    "tabular-5%": ("backdoor", lambda: sc.tabular_backdoor("breast_cancer", rate=0.05)),
    "random-flips-10%": ("flips", lambda: sc.random_flips(rate=0.10)),
    "targeted-flips-30%": ("flips", lambda: sc.targeted_flips(source=3, target=8)),
    "clean-digits": ("clean", lambda: sc.clean("digits")),
    "clean-breast_cancer": ("clean", lambda: sc.clean("breast_cancer")),
}
# More rows than the bundled sets: digits and their one-pixel shifts, 11,321 training rows (the
# reference model is approximated above 3,000 and triggers are probed on a sample of rows).
LARGE: dict[str, tuple[str, Callable[[], sc.Scenario]]] = {
    "large-badnets-5%": ("backdoor", lambda: sc.badnets("digits_shifted", rate=0.05)),
    "large-random-flips-10%": ("flips", lambda: sc.random_flips("digits_shifted", rate=0.10)),
    "large-clean": ("clean", lambda: sc.clean("digits_shifted")),
}
HELD_OUT: dict[str, tuple[str, Callable[[], sc.Scenario]]] = {
    "ho-badnets-checker-topleft-10%-s101": (
        "backdoor",
        lambda: sc.badnets(rate=0.10, seed=101, trigger="checker", position="top-left"),
    ),
    "ho-badnets-cross-centre-5%-s103": (
        "backdoor",
        lambda: sc.badnets(rate=0.05, seed=103, trigger="cross", position="centre", target=3),
    ),
    "ho-badnets-blend0.2-8%-s102": (
        "backdoor",
        lambda: sc.badnets(rate=0.08, seed=102, trigger="blend", blend=0.2, target=5),
    ),
    "ho-badnets-random4-3%-s100": (
        "backdoor",
        lambda: sc.badnets(
            rate=0.03, seed=100, trigger="random", size=4, position="top-right", target=7
        ),
    ),
    "ho-tabular-wine-8%-s100": (
        "backdoor",
        lambda: sc.tabular_backdoor("wine", seed=100, rate=0.08),
    ),
    "ho-tabular-iris-7%-s100": (
        "backdoor",
        lambda: sc.tabular_backdoor("iris", seed=100, rate=0.07, target=2),
    ),
    "ho-tabular-synthetic-5%-s100": (
        "backdoor",
        lambda: sc.tabular_backdoor("synthetic", seed=100, features=4, target=2),
    ),
    "ho-tabular-digits-in-range-5%-s100": (
        "backdoor",
        lambda: sc.tabular_backdoor("digits_tabular", seed=100, quantile=0.95, target=4),
    ),
    "ho-random-flips-breast_cancer-s100": (
        "flips",
        lambda: sc.random_flips("breast_cancer", seed=100),
    ),
    "ho-targeted-flips-digits-s100": (
        "flips",
        lambda: sc.targeted_flips(seed=100, source=0, target=3),
    ),
    "ho-targeted-flips-wine-s100": (
        "flips",
        lambda: sc.targeted_flips("wine", seed=100, source=0, target=1),
    ),
    "ho-clean-synthetic-s100": ("clean", lambda: sc.clean("synthetic", seed=100)),
    "ho-clean-wine-s101": ("clean", lambda: sc.clean("wine", seed=101)),
}

# Families of variations for ``--sweep``: each maps a seed to a scenario, the seed also choosing
# the target and source classes, so no two seeds test the same pair.
SWEEP: dict[str, tuple[str, Callable[[int], sc.Scenario]]] = {
    "badnets-square-5%": ("backdoor", lambda s: sc.badnets(rate=0.05, seed=s, target=s % 10)),
    "badnets-checker-tl-7%": (
        "backdoor",
        lambda s: sc.badnets(
            rate=0.07, seed=s, trigger="checker", position="top-left", target=(s + 1) % 10
        ),
    ),
    "badnets-line-bl-5%": (
        "backdoor",
        lambda s: sc.badnets(
            rate=0.05, seed=s, trigger="line", position="bottom-left", target=(s + 3) % 10
        ),
    ),
    "badnets-cross-centre-4%": (
        "backdoor",
        lambda s: sc.badnets(
            rate=0.04, seed=s, trigger="cross", position="centre", target=(s + 7) % 10
        ),
    ),
    "badnets-blend0.15-6%": (
        "backdoor",
        lambda s: sc.badnets(rate=0.06, seed=s, trigger="blend", blend=0.15, target=(s + 5) % 10),
    ),
    "tabular-breast_cancer-5%": (
        "backdoor",
        lambda s: sc.tabular_backdoor("breast_cancer", rate=0.05, seed=s, target=s % 2),
    ),
    "tabular-wine-6%": (
        "backdoor",
        lambda s: sc.tabular_backdoor("wine", rate=0.06, seed=s, target=s % 3),
    ),
    "tabular-iris-7%": (
        "backdoor",
        lambda s: sc.tabular_backdoor("iris", rate=0.07, seed=s, target=s % 3),
    ),
    "tabular-synthetic-5%": (
        "backdoor",
        lambda s: sc.tabular_backdoor("synthetic", rate=0.05, seed=s, features=4, target=s % 4),
    ),
    "tabular-digits-in-range-5%": (
        "backdoor",
        lambda s: sc.tabular_backdoor("digits_tabular", seed=s, quantile=0.95, target=s % 10),
    ),
    "random-flips-digits-10%": ("flips", lambda s: sc.random_flips(rate=0.1, seed=s)),
    "random-flips-breast_cancer-10%": (
        "flips",
        lambda s: sc.random_flips("breast_cancer", rate=0.1, seed=s),
    ),
    "random-flips-wine-10%": ("flips", lambda s: sc.random_flips("wine", rate=0.1, seed=s)),
    "random-flips-iris-10%": ("flips", lambda s: sc.random_flips("iris", rate=0.1, seed=s)),
    "targeted-flips-digits-30%": (
        "flips",
        lambda s: sc.targeted_flips(seed=s, source=s % 10, target=(s + 3) % 10),
    ),
    # Three classes, two of them overlapping (iris): added 2026-12-07, after seeds 600-608 showed
    # the busier side of a pair can be the wrong one there.
    "targeted-flips-iris-30%": (
        "flips",
        lambda s: sc.targeted_flips("iris", seed=s, source=s % 3, target=(s + 2) % 3),
    ),
    "targeted-flips-wine-30%": (
        "flips",
        lambda s: sc.targeted_flips("wine", seed=s, source=s % 3, target=(s + 1) % 3),
    ),
    # Four classes of two overlapping clusters each: no model beats about 88% there.
    "random-flips-synthetic-10%": (
        "flips",
        lambda s: sc.random_flips("synthetic", rate=0.1, seed=s),
    ),
    # Classes of 60%, 30% and 10%: the big class's random flips are most of the small one's.
    "random-flips-imbalanced-10%": (
        "flips",
        lambda s: sc.random_flips("imbalanced", rate=0.1, seed=s),
    ),
    "clean-digits": ("clean", lambda s: sc.clean("digits", seed=s)),
    "clean-breast_cancer": ("clean", lambda s: sc.clean("breast_cancer", seed=s)),
    "clean-wine": ("clean", lambda s: sc.clean("wine", seed=s)),
    "clean-iris": ("clean", lambda s: sc.clean("iris", seed=s)),
    "clean-synthetic": ("clean", lambda s: sc.clean("synthetic", seed=s)),
    "clean-imbalanced": ("clean", lambda s: sc.clean("imbalanced", seed=s)),
}


def log(message: str) -> None:
    sys.stderr.write(f"[data-bench] {message}\n")
    sys.stderr.flush()


def ensure_art() -> Path | None:
    python = ART_VENV / "bin" / "python"
    stamp = ART_VENV / ".bench-stamp"
    want = json.dumps({"pin": ART_PIN, "undeclared": ART_UNDECLARED, "torch": TORCH_PIN})
    if stamp.exists() and stamp.read_text() == want and python.exists():
        return python
    log(f"creating {ART_VENV.relative_to(ROOT)} for {ART_PIN} ...")
    if ART_VENV.exists():
        shutil.rmtree(ART_VENV)
    ART_VENV.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(ART_VENV)], check=True)
        pip = str(ART_VENV / "bin" / "pip")
        # torch first: the local CPU wheel, so pip never pulls a multi-GB CUDA build.
        subprocess.run([pip, "install", "--quiet", TORCH_PIN], check=True)
        subprocess.run([pip, "install", "--quiet", ART_PIN, *ART_UNDECLARED], check=True)
    except subprocess.CalledProcessError as exc:
        log(f"cannot set up ART ({exc}); running mlward alone")
        return None
    stamp.write_text(want)
    return python


def run_art(python: Path, scenario: sc.Scenario, workdir: Path) -> dict[str, object]:
    source = workdir / "in.npz"
    target = workdir / "out.json"
    np.savez(source, x=scenario.train.x, y=scenario.train.y)
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), str(BENCH / "peer_art.py"), str(source), str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        log(f"ART failed on {scenario.name}: {done.stderr.strip()[-400:]}")
        return {}
    result: dict[str, object] = json.loads(target.read_text())
    result["wall"] = wall
    return result


def row(
    name: str,
    kind: str,
    tool: str,
    m: sc.Measurement,
    seconds: float,
    repaired: sc.Measurement | None = None,
) -> dict[str, object]:
    """One tool on one scenario; ``repaired``: victims retrained on mlward's repaired dataset."""
    return {
        "scenario": name,
        "kind": kind,
        "tool": tool,
        **asdict(m),
        "attack_success_repaired": None if repaired is None else repaired.attack_success_after,
        "clean_accuracy_repaired": None if repaired is None else repaired.clean_accuracy_after,
        "seconds": round(seconds, 2),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(rows: list[dict[str, object]]) -> None:
    header = (
        f"{'scenario':38} {'tool':8} {'flagged':>7} {'prec':>6} {'recall':>6} {'F1':>6} "
        f"{'FPR':>6} {'ASR before':>10} {'ASR after':>9} {'ASR ideal':>9} {'ASR clean':>9} "
        f"{'acc base':>8} {'acc ideal':>9} "
        f"{'acc after':>9} {'ASR rep':>7} {'acc rep':>7} "
        f"{'time s':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        clean = r["kind"] == "clean"
        print(
            f"{r['scenario']!s:38} {r['tool']!s:8} {r['flagged']!s:>7} "
            f"{'-' if clean else _fmt(r['precision']):>6} "  # type: ignore[arg-type]
            f"{'-' if clean else _fmt(r['recall']):>6} "  # type: ignore[arg-type]
            f"{'-' if clean else _fmt(r['f1']):>6} "  # type: ignore[arg-type]
            f"{_fmt(r['false_positive_rate']):>6} "  # type: ignore[arg-type]
            f"{_fmt(r['attack_success_before']):>10} {_fmt(r['attack_success_after']):>9} "
            f"{_fmt(r['attack_success_ideal']):>9} "  # type: ignore[arg-type]
            f"{_fmt(r['attack_success_clean']):>9} "  # type: ignore[arg-type]
            f"{_fmt(r['clean_accuracy_baseline']):>8} "  # type: ignore[arg-type]
            f"{_fmt(r['clean_accuracy_ideal']):>9} {_fmt(r['clean_accuracy_after']):>9} "  # type: ignore[arg-type]
            f"{_fmt(r['attack_success_repaired']):>7} {_fmt(r['clean_accuracy_repaired']):>7} "  # type: ignore[arg-type]
            f"{r['seconds']!s:>7}"
        )


def misses(r: dict[str, object]) -> list[str]:
    """The acceptance targets this mlward result misses."""
    out = []
    kind = r["kind"]
    if kind == "backdoor" and float(r["f1"]) < 0.9:  # type: ignore[arg-type]
        out.append("F1 < 0.9")
    if kind == "flips" and float(r["f1"]) < 0.8:  # type: ignore[arg-type]
        out.append("F1 < 0.8")
    if float(r["false_positive_rate"]) > 0.02:  # type: ignore[arg-type]
        out.append("FPR > 2%")
    # mlward's output for retraining is its repaired dataset; ART's, the rows left unflagged.
    repaired = r["clean_accuracy_repaired"] is not None
    after = r["attack_success_repaired"] if repaired else r["attack_success_after"]
    natural = r["attack_success_clean"]
    ideal = r["attack_success_ideal"]
    if after is not None and float(after) > 0.05:  # type: ignore[arg-type]
        # Reported either way; marked when the trigger also fools a model that never saw poison,
        # or one trained without exactly the poisoned rows (no filter can do better).
        why = "ASR after > 0.05"
        if ideal is not None and float(ideal) >= float(after) - 0.02:  # type: ignore[arg-type]
            why += f" (without exactly the poisoned rows: {float(ideal):.2f})"  # type: ignore[arg-type]
        if natural is not None and float(natural) >= float(after) - 0.02:  # type: ignore[arg-type]
            why += f" (a victim trained on unpoisoned data: {float(natural):.2f})"  # type: ignore[arg-type]
        out.append(why)
    kept = r["clean_accuracy_repaired"] if repaired else r["clean_accuracy_after"]
    lost = float(r["clean_accuracy_baseline"]) - float(kept)  # type: ignore[arg-type]
    if lost > 0.01:
        why = f"clean accuracy lost {lost * 100:.1f} points"
        # Removing exactly the poisoned rows costs accuracy too, on small sets: reported beside.
        ideal_accuracy = r.get("clean_accuracy_ideal")
        if ideal_accuracy is not None:
            ideal_lost = float(r["clean_accuracy_baseline"]) - float(ideal_accuracy)  # type: ignore[arg-type]
            why += f" (without exactly the poisoned rows: {ideal_lost * 100:.1f})"
        out.append(why)
    return out


def sweep(seeds: list[int], only: list[str] | None, retrain: bool = False) -> int:
    """Detection scores per family over ``seeds``; 1 when any seed misses a target. With
    ``retrain``, also the attack success rate and clean accuracy of victims retrained on
    mlward's repaired dataset, checked against the targets too."""
    print(
        f"{'family':32} {'kind':8} {'F1 min':>6} {'F1 med':>6} {'FPR max':>7}"
        + (f" {'ASR max':>7} {'acc lost max':>12}" if retrain else "")
        + "  misses"
    )
    failed = 0
    results: dict[str, list[dict[str, object]]] = {}
    for family, (kind, factory) in SWEEP.items():
        if only and family not in only:
            continue
        scores = []
        for seed in seeds:
            scenario = factory(seed)
            report = audit_data(scenario.train)
            if retrain:
                m = sc.measure(
                    scenario,
                    report.suspicious_rows,
                    seeds=VICTIM_SEEDS,
                    retrain_on=audit.repaired(scenario.train, report),
                )
                checked = row(family, kind, "mlward", m, 0.0, repaired=m)
                scores.append({"seed": seed, **asdict(m), "misses": misses(checked)})
            else:
                m = sc.measure(scenario, report.suspicious_rows, retrain=False)
                scores.append({"seed": seed, **asdict(m)})
        f1 = [float(str(r["f1"])) for r in scores]
        fpr = [float(str(r["false_positive_rate"])) for r in scores]
        floor = {"backdoor": 0.9, "flips": 0.8}.get(kind)
        missed = [
            f"s{r['seed']}" + (f" ({'; '.join(r['misses'])})" if r.get("misses") else "")  # type: ignore[arg-type]
            for r, score, rate in zip(scores, f1, fpr, strict=True)
            if (floor is not None and score < floor) or rate > 0.02 or r.get("misses")
        ]
        extra = ""
        if retrain:
            attacks = [
                float(str(r["attack_success_after"]))
                for r in scores
                if r["attack_success_after"] is not None
            ]
            lost = [
                float(str(r["clean_accuracy_baseline"])) - float(str(r["clean_accuracy_after"]))
                for r in scores
            ]
            extra = f" {max(attacks) if attacks else float('nan'):7.3f} {max(lost) * 100:11.1f}p"
        failed += len(missed)
        results[family] = scores
        print(
            f"{family:32} {kind:8} "
            f"{'-' if floor is None else f'{min(f1):.3f}':>6} "
            f"{'-' if floor is None else f'{float(np.median(f1)):.3f}':>6} "
            f"{max(fpr):7.3f}{extra}  {' '.join(missed)}",
            flush=True,
        )
    out = BENCH / "results" / f"data-sweep-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seeds": seeds, "families": results}, indent=2))
    print(f"\n{failed} family/seed pairs miss a target; results: {out.relative_to(ROOT)}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", action="store_true", help="add the held-out variations")
    parser.add_argument(
        "--large", action="store_true", help="add scenarios on 11,321 rows (shifted digits)"
    )
    parser.add_argument("--no-art", action="store_true", help="run mlward alone")
    parser.add_argument("--scenarios", nargs="*", help="run only these scenarios (or families)")
    parser.add_argument(
        "--sweep", nargs="+", type=int, metavar="SEED", help="run the families over these seeds"
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="with --sweep: also retrain victims on mlward's repaired dataset (slow)",
    )
    args = parser.parse_args()
    if args.sweep:
        return sweep(args.sweep, args.scenarios, args.retrain)
    chosen = dict(MAIN)
    if args.held_out:
        chosen.update(HELD_OUT)
    if args.large:
        chosen.update(LARGE)
    if args.scenarios:
        every = {**MAIN, **HELD_OUT, **LARGE}
        chosen = {k: v for k, v in every.items() if k in args.scenarios}
    art = None if args.no_art else ensure_art()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, factory) in chosen.items():
            scenario = factory()
            log(f"{name}: {len(scenario.train)} rows, {int(scenario.poisoned.sum())} poisoned")
            started = time.perf_counter()
            report = audit_data(scenario.train)
            seconds = time.perf_counter() - started
            kept = audit.filtered(scenario.train, report)
            fixed = audit.repaired(scenario.train, report)
            filtered = sc.measure(
                scenario, report.suspicious_rows, seeds=VICTIM_SEEDS, retrain_on=kept
            )
            # The same rows and labels (nothing restored): the same victims, no retraining.
            same = np.array_equal(kept.x, fixed.x) and np.array_equal(kept.y, fixed.y)
            repaired = (
                filtered
                if same
                else sc.measure(
                    scenario, report.suspicious_rows, seeds=VICTIM_SEEDS, retrain_on=fixed
                )
            )
            rows.append(row(name, kind, "mlward", filtered, seconds, repaired))
            if art is not None:
                found = run_art(art, scenario, Path(tmp))
                timing = found.get("seconds", {})
                for tool in ("art-ac", "art-ss"):
                    if tool in found:
                        flagged = list(found[tool])  # type: ignore[call-overload]
                        spent = float(timing.get("train", 0.0)) + float(timing.get(tool, 0.0))  # type: ignore[union-attr]
                        measured = sc.measure(scenario, flagged, seeds=VICTIM_SEEDS)
                        rows.append(row(name, kind, tool, measured, spent))
    print_table(rows)
    failed = [(r["scenario"], misses(r)) for r in rows if r["tool"] == "mlward" and misses(r)]
    print()
    for name, why in failed:
        print(f"MISSED {name}: {', '.join(why)}")
    if not failed:
        print("mlward meets every acceptance target on these scenarios")
    out = BENCH / "results" / f"data-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "art": ART_PIN if art else None}, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    main_failed = [n for n, _ in failed if n in MAIN]
    return 1 if main_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
