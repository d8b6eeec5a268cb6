"""Turn what the inert unpickler saw into findings with messages a user can act on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from mlward.results import Finding, Location, Severity
from mlward.scanning.pickle_vm import Action, ImportSeen, StreamAnalysis
from mlward.scanning.policy import REVIEWED_UNSAFE, Trust

MUTATING_GLOBAL = {"build-global", "setitem-global", "append-global", "extend-global", "add-global"}

_WHAT_RUNS = {
    "call": "calls it",
    "new": "creates an instance with its __new__",
    "setstate": "restores state with its __setstate__ (or a __dict__ update)",
    "append": "calls its append()",
    "extend": "calls its extend()",
    "add": "calls its add()",
    "setitem": "calls its __setitem__()",
}


def _what_runs(kinds: Iterable[str]) -> str:
    parts = [
        _WHAT_RUNS[k]
        for k in ("new", "call", "setstate", "append", "extend", "add", "setitem")
        if k in kinds
    ]
    if not parts:
        return "imports it (an import alone runs the module's top-level code)"
    return "imports it, " + ", ".join(parts)


def findings_for_stream(
    analysis: StreamAnalysis,
    location: Callable[[int | None, int | None, str | None], Location],
    *,
    expect_persistent_ids: bool,
) -> list[Finding]:
    findings: list[Finding] = []
    kinds_by_target: dict[str, set[str]] = defaultdict(set)
    first_action: dict[str, Action] = {}
    for action in analysis.actions:
        base = action.target.removesuffix("(…)")
        kinds_by_target[base].add(action.kind)
        first_action.setdefault(base, action)

    reported: set[str] = set()
    for seen in analysis.imports:
        if seen.full in reported or seen.decision.trust is Trust.TRUSTED:
            continue
        reported.add(seen.full)
        findings.append(
            _import_finding(
                seen, kinds_by_target.get(seen.full, set()), first_action.get(seen.full), location
            )
        )

    for action in analysis.actions:
        if action.kind in MUTATING_GLOBAL:
            findings.append(
                Finding(
                    rule_id="MW110",
                    title="Load-time monkeypatch of a global object",
                    severity=Severity.HIGH,
                    message=(
                        f"The stream changes the global object {action.target} itself "
                        f"({action.kind.removesuffix('-global')} with {action.detail}). "
                        "Every later use of that class, function or module in the loading "
                        "process runs what the file put there, with no dangerous import needed."
                    ),
                    location=location(action.offset, action.pickle_index, action.kind),
                    evidence={
                        "global": action.target,
                        "operation": action.kind,
                        "argument": action.detail,
                    },
                )
            )
        elif action.kind == "call-result":
            findings.append(
                Finding(
                    rule_id="MW111",
                    title="Calls an object built during loading",
                    severity=Severity.MEDIUM,
                    message=(
                        f"The stream calls {action.target} — an object it built itself — with "
                        f"{action.detail}. Model producers never do this; it is how gadget chains "
                        "reach code that no import names."
                    ),
                    location=location(action.offset, action.pickle_index, "REDUCE"),
                    evidence={"target": action.target, "arguments": action.detail},
                )
            )
        elif action.kind == "nested-opaque":
            findings.append(
                Finding(
                    rule_id="MW112",
                    title="Nested loader with hidden input",
                    severity=Severity.MEDIUM,
                    message=(
                        f"The stream passes {action.detail} to {action.target}, which unpickles "
                        "what it is given; those bytes are computed during loading, so what they "
                        "run cannot be seen without running them."
                    ),
                    location=location(action.offset, action.pickle_index, "REDUCE"),
                    evidence={"loader": action.target, "arguments": action.detail},
                )
            )
        elif action.kind == "persistent-id" and not expect_persistent_ids:
            findings.append(
                Finding(
                    rule_id="MW130",
                    title="Persistent id",
                    severity=Severity.INFO,
                    message=(
                        f"Persistent id {action.detail}: plain pickle.load refuses it; a loader "
                        "with its own persistent_load decides what it becomes."
                    ),
                    location=location(action.offset, action.pickle_index, "PERSID"),
                    evidence={"persistent_id": action.detail},
                )
            )

    for code, offset in analysis.ext_codes:
        findings.append(
            Finding(
                rule_id="MW120",
                title="Extension-registry opcode",
                severity=Severity.MEDIUM,
                message=(
                    f"EXT opcode with code {code}: the loader imports whatever the process's "
                    "copyreg extension registry maps it to. No model producer emits these; the "
                    "target is hidden from the file."
                ),
                location=location(offset, None, "EXT"),
                evidence={"extension_code": code},
            )
        )
    return findings


def _import_finding(
    seen: ImportSeen,
    kinds: set[str],
    action: Action | None,
    location: Callable[[int | None, int | None, str | None], Location],
) -> Finding:
    what = _what_runs(kinds)
    evidence: dict[str, object] = {
        "global": seen.full,
        "trusted": False,
        "operations": sorted(kinds),
    }
    if action is not None:
        evidence["arguments"] = action.detail
    if seen.remapped_from:
        evidence["written_as"] = seen.remapped_from
    if seen.decision.trust is Trust.DANGEROUS:
        evidence["category"] = seen.decision.category
        call = f" with {action.detail}" if action is not None and action.kind == "call" else ""
        return Finding(
            rule_id="MW100",
            title="Known-dangerous callable",
            severity=Severity.CRITICAL,
            message=(
                f"Loading this file {what.replace('imports it', f'imports {seen.full}', 1)}{call}. "
                f"{seen.decision.reason}"
            ),
            location=location(seen.offset, seen.pickle_index, seen.opcode or None),
            evidence=evidence,
            fix=f"Do not load this file. If you wrote it and trust it: --allow {seen.full}",
        )
    if seen.decision.category == REVIEWED_UNSAFE:
        # A global mainstream producers do write, reviewed and deliberately left off the
        # allowlists: say what calling it does instead of "not on any allowlist".
        evidence["reviewed"] = "unsafe"
        return Finding(
            rule_id="MW101",
            title="Global reviewed as unsafe to load",
            severity=Severity.MEDIUM,
            message=(
                f"{seen.full} was reviewed and is deliberately not on any allowlist. Loading "
                f"this file {what.replace('imports it', f'imports {seen.full}', 1)}, so that "
                f"code runs at load time on data from the file. {seen.decision.reason}"
            ),
            location=location(seen.offset, seen.pickle_index, seen.opcode or None),
            evidence=evidence,
            fix=f"--allow {seen.full} (only for a file from a source you trust)",
        )
    return Finding(
        rule_id="MW101",
        title="Global outside every allowlist",
        severity=Severity.MEDIUM,
        message=(
            f"{seen.full} is not on any allowlist. Loading this file "
            f"{what.replace('imports it', f'imports {seen.full}', 1)}, so that code runs at load "
            f"time; the object is reconstructed from data in the file. Trust it only if you "
            f"know and trust the package that defines it."
        ),
        location=location(seen.offset, seen.pickle_index, seen.opcode or None),
        evidence=evidence,
        fix=f"--allow {seen.full}",
    )
