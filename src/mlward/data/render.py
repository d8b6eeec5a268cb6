"""Pure renderers for dataset audits and diffs: report -> str, no I/O."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from mlward.data.backdoor_model import BackdoorScan
from mlward.data.results import ClassState, DataAuditReport, DataDiff, Snapshot


def audit_dict(report: DataAuditReport) -> dict[str, Any]:
    by_row: dict[int, list[dict[str, Any]]] = {}
    for flag in report.flags:
        by_row.setdefault(flag.row, []).append(
            {"detector": flag.detector, "score": flag.score, "reason": flag.reason}
        )
    poison = set(report.suspicious_rows)
    review = set(report.review_rows)
    restored = dict(report.restored_labels)
    samples = [
        {
            "row": row,
            "label": next(f.label for f in report.flags if f.row == row),
            "score": max(e["score"] for e in by_row[row] if e["detector"] in _POISON_DETECTORS)
            if row in poison
            else max(e["score"] for e in by_row[row]),
            "poison": row in poison,
            # A label error no more common than natural ones: listed, not held as poison.
            "review": row in review,
            # The class a trigger carrier looks like without the trigger (repaired datasets).
            "restored_label": restored.get(row),
            "evidence": by_row[row],
        }
        for row in sorted(by_row)
    ]
    return {
        "source": report.source,
        "rows": report.rows,
        "features": report.features,
        "feature_source": report.feature_source,
        "reference_model": report.reference_model,
        "poisoned": report.poisoned,
        "estimated_poison_rate": round(report.estimated_poison_rate, 4),
        "flagged_rows": list(report.suspicious_rows),
        "removed_rows": list(report.removed_rows),
        "review_rows": list(report.review_rows),
        "restored_labels": [{"row": r, "label": label} for r, label in report.restored_labels],
        "samples": samples,
        "classes": [{**asdict(c), "state": c.state.value} for c in report.classes],
        "detectors": [asdict(d) for d in report.detectors],
        "seconds": round(report.seconds, 3),
    }


_POISON_DETECTORS = frozenset({"separation", "label-noise", "duplicates"})


def render_audit_json(report: DataAuditReport) -> str:
    return json.dumps(audit_dict(report), indent=2) + "\n"


def render_audit_text(report: DataAuditReport, limit: int = 50) -> str:
    lines = [
        f"dataset {report.source}: {report.rows} rows, {report.features} features "
        f"({report.feature_source})"
        + (f"; reference model: {report.reference_model}" if report.reference_model else ""),
        f"verdict: {'POISONED' if report.poisoned else 'clean'}; "
        f"{len(report.suspicious_rows)} suspicious rows, estimated poison rate "
        f"{report.estimated_poison_rate:.1%}",
        "",
        "classes:",
    ]
    for c in report.classes:
        marker = {ClassState.CLEAN: " ", ClassState.NOISY: "~", ClassState.POISONED: "!"}[c.state]
        lines.append(f"  {marker} {c.reason}")
    if report.suspicious_rows:
        lines += ["", "suspicious rows (row: detector score - reason):"]
        poison = set(report.suspicious_rows)
        shown = [f for f in report.flags if f.row in poison and f.counts_as_poison]
        for flag in shown[:limit]:
            lines.append(f"  {flag.row}: {flag.detector} {flag.score:.2f} - {flag.reason}")
        if len(shown) > limit:
            lines.append(f"  ... {len(shown) - limit} more (use --format json for all)")
        if report.restored_labels:
            lines.append(
                f"  trigger carriers that look like another class without the trigger: "
                f"{len(report.restored_labels)} (--write-repaired keeps them under that class)"
            )
    if report.review_rows:
        review = set(report.review_rows)
        listed = [f for f in report.flags if f.row in review and f.detector == "label-noise"]
        lines += [
            "",
            f"label errors to review ({len(review)}; no more common than natural label noise, so "
            "not held as poison;",
            "  a filtered dataset keeps them, --drop-review drops them too):",
        ]
        for flag in listed[:limit]:
            lines.append(f"  {flag.row}: {flag.detector} {flag.score:.2f} - {flag.reason}")
        if len(listed) > limit:
            lines.append(f"  ... {len(listed) - limit} more (use --format json for all)")
    other = [f for f in report.flags if not f.counts_as_poison]
    if other:
        lines += [
            "",
            f"supporting evidence ({len(other)} flags: spectral, clustering, outliers, overlap):",
        ]
        for flag in other[:10]:
            lines.append(f"  {flag.row}: {flag.detector} {flag.score:.2f} - {flag.reason}")
        if len(other) > 10:
            lines.append(f"  ... {len(other) - 10} more (use --format json for all)")
    lines += [
        "",
        "detectors: "
        + ", ".join(f"{d.name} {d.flagged} ({d.seconds:.1f}s)" for d in report.detectors),
    ]
    return "\n".join(lines) + "\n"


def render_snapshot_text(snapshot: Snapshot, store: str) -> str:
    return (
        f"snapshot of {snapshot.source}: {snapshot.rows} rows, {snapshot.features} features\n"
        f"digest sha256:{snapshot.digest}\nstored in {store}\n"
    )


def diff_dict(diff: DataDiff) -> dict[str, Any]:
    return {
        "old": diff.old,
        "new": diff.new,
        "added": list(diff.added),
        "removed": list(diff.removed),
        "changed": [{"old_row": o, "new_row": n} for o, n in diff.changed],
        "relabelled": [
            {"old_row": o, "new_row": n, "old_label": a, "new_label": b}
            for o, n, a, b in diff.relabelled
        ],
        "class_counts": [{"class": c, "old": a, "new": b} for c, a, b in diff.class_counts],
        "feature_shift": [asdict(s) for s in diff.feature_shift],
        "added_audit": None if diff.added_audit is None else audit_dict(diff.added_audit),
    }


def render_diff_json(diff: DataDiff) -> str:
    return json.dumps(diff_dict(diff), indent=2) + "\n"


def render_diff_text(diff: DataDiff) -> str:
    lines = [
        f"{diff.old} -> {diff.new}: {len(diff.added)} added, {len(diff.removed)} removed, "
        f"{len(diff.changed)} changed, {len(diff.relabelled)} relabelled",
    ]
    if diff.added:
        lines.append("added rows (new): " + ", ".join(map(str, diff.added)))
    if diff.removed:
        lines.append("removed rows (old): " + ", ".join(map(str, diff.removed)))
    if diff.changed:
        lines.append("changed rows (old->new): " + ", ".join(f"{o}->{n}" for o, n in diff.changed))
    if diff.relabelled:
        lines.append(
            "relabelled rows (old->new: label): "
            + ", ".join(f"{o}->{n}: {a}->{b}" for o, n, a, b in diff.relabelled)
        )
    moved = [(c, a, b) for c, a, b in diff.class_counts if a != b]
    if moved:
        lines.append("class counts: " + ", ".join(f"{c} {a}->{b}" for c, a, b in moved))
    if diff.feature_shift:
        lines.append(
            "largest feature shifts (in old standard deviations): "
            + ", ".join(f"{s.feature} {s.shift:+.2f}" for s in diff.feature_shift[:5])
        )
    if diff.added_audit is not None:
        lines += ["", "audit of the added rows (row numbers are rows of NEW):"]
        lines.append(render_audit_text(diff.added_audit, limit=20))
    return "\n".join(lines) + "\n"


def backdoor_dict(result: BackdoorScan) -> dict[str, Any]:
    return {
        "sample": result.source,
        "backdoored": result.backdoored,
        "suspected_targets": list(result.suspected),
        "inconclusive": result.inconclusive,
        "classes": [
            {
                "label": t.label,
                "mask_l1": round(t.mask_l1, 4),
                "attack_success": round(t.attack_success, 4),
                "anomaly_index": round(t.anomaly_index, 4),
                "twin_success": None if t.twin_success is None else round(t.twin_success, 4),
                "patch": None
                if t.patch is None
                else {
                    "top": t.patch[0],
                    "left": t.patch[1],
                    "size": t.patch[2],
                    "success": _rounded(t.patch_success),
                    "twin_success": _rounded(t.patch_twin_success),
                },
            }
            for t in result.classes
        ],
        "seconds": round(result.seconds, 3),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def render_backdoor_json(result: BackdoorScan) -> str:
    return json.dumps(backdoor_dict(result), indent=2) + "\n"


def render_backdoor_text(result: BackdoorScan) -> str:
    if result.suspected:
        head = "BACKDOOR suspected: target class " + ", ".join(map(str, result.suspected))
    elif result.inconclusive:
        head = f"INCONCLUSIVE: {result.inconclusive}"
    else:
        head = "no backdoor found"
    patches = any(t.patch is not None for t in result.classes)
    lines = [
        head,
        "",
        "class  mask L1  success  anomaly  twin success"
        + ("  patch at  patch success  twin" if patches else ""),
    ]
    for t in result.classes:
        twin = "-" if t.twin_success is None else f"{t.twin_success:.2f}"
        mark = "!" if t.label in result.suspected else " "
        line = (
            f"{mark}{t.label:>4}  {t.mask_l1:7.2f}  {t.attack_success:7.2f}  "
            f"{t.anomaly_index:7.2f}  {twin:>12}"
        )
        if t.patch is not None:
            top, left, size = t.patch
            place = f"{size}x{size}@{top},{left}"
            patch_twin = "-" if t.patch_twin_success is None else f"{t.patch_twin_success:.2f}"
            line += f"  {place:>8}  {t.patch_success or 0.0:13.2f}  {patch_twin:>4}"
        lines.append(line)
    lines.append("")
    lines.append(
        "a class is named when its trigger is anomalously small (anomaly > 1.8) or a patch "
        "sends the sample to it (>= 0.9), and that trigger works on the model (>= 0.9) but "
        "fails on a twin retrained on the sample (<= 0.25)"
    )
    return "\n".join(lines) + "\n"
