"""Lineage renderers: text for a terminal, Graphviz DOT and Mermaid for a graph. Pure functions
of a ``Lineage``: same input, same output, no I/O."""

from __future__ import annotations

from collections.abc import Callable

from mlward.provenance.lineage import (
    DATASET,
    DECISION,
    EVIDENCE,
    MODEL,
    RUN,
    SIGNATURE,
    Lineage,
    LineageNode,
)

_SECTIONS = (
    (DATASET, "data"),
    (RUN, "training runs"),
    (MODEL, "models"),
    (SIGNATURE, "signatures"),
    (DECISION, "decisions"),
    (EVIDENCE, "other evidence"),
)


def _short(digest: str) -> str:
    return f"sha256:{digest[:12]}"


def _heading(node: LineageNode) -> str:
    parts = [node.label]
    if node.digest:
        parts.append(f"sha256:{node.digest}")
    if node.log_index is not None:
        parts.append(f"log #{node.log_index}")
    if node.timestamp:
        parts.append(node.timestamp)
    return "  ".join(parts)


def render_text(lineage: Lineage) -> str:
    """Sections in chain order (data, runs, models, signatures, decisions), each node with its
    details and where its edges lead."""
    names = {n.id: n.label for n in lineage.nodes}
    lines = [
        f"lineage of sha256:{lineage.model_digest}"
        + (f" ({lineage.model_path})" if lineage.model_path else ""),
        f"log: {lineage.log} ({lineage.entries_read} entries read)",
    ]
    if lineage.skipped:
        lines.append(f"skipped {len(lineage.skipped)} entries that are not valid evidence")
    for kind, title in _SECTIONS:
        nodes = lineage.of_kind(kind)
        if not nodes:
            if kind in (DATASET, RUN, SIGNATURE, DECISION):
                lines += ["", f"{title}: none found"]
            continue
        lines += ["", f"{title}:"]
        for node in nodes:
            lines.append(f"  {_heading(node)}")
            lines.extend(f"      {key}: {value}" for key, value in node.details)
            lines.extend(
                f"      -> {edge.label} {names.get(edge.target, edge.target)}"
                for edge in lineage.edges
                if edge.source == node.id
            )
    return "\n".join(lines) + "\n"


def _label(node: LineageNode) -> list[str]:
    lines = [node.label]
    if node.digest:
        lines.append(_short(node.digest))
    if node.log_index is not None:
        lines.append(f"log #{node.log_index}")
    lines.extend(
        f"{key}: {value}"
        for key, value in node.details
        if key in ("decision", "verdict", "result", "signer", "code", "runId")
    )
    return lines


_DOT_SHAPES = {
    DATASET: "cylinder",
    RUN: "box3d",
    MODEL: "box",
    SIGNATURE: "note",
    DECISION: "diamond",
    EVIDENCE: "component",
}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(lineage: Lineage) -> str:
    """A Graphviz digraph, left to right: data -> run -> model -> signatures, decisions."""
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in lineage.nodes:
        label = _dot_quote("\n".join(_label(node)))
        attributes = f"label={label}, shape={_DOT_SHAPES[node.kind]}"
        if node.kind == MODEL and node.digest == lineage.model_digest:
            attributes += ", penwidth=2"
        lines.append(f"  {_dot_quote(node.id)} [{attributes}];")
    lines.extend(
        f"  {_dot_quote(e.source)} -> {_dot_quote(e.target)} [label={_dot_quote(e.label)}];"
        for e in lineage.edges
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label only '"' breaks the syntax; entity codes keep the text.
    for raw, code in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, code)
    return text


_MERMAID_SHAPES: dict[str, Callable[[str], str]] = {
    DATASET: lambda t: f'[("{t}")]',
    RUN: lambda t: f'[["{t}"]]',
    MODEL: lambda t: f'["{t}"]',
    SIGNATURE: lambda t: f'>"{t}"]',
    DECISION: lambda t: f'{{"{t}"}}',
    EVIDENCE: lambda t: f'("{t}")',
}


_MERMAID_STYLES = {
    DATASET: "fill:#e0f2fe,stroke:#0369a1",
    RUN: "fill:#fef9c3,stroke:#a16207",
    MODEL: "fill:#dcfce7,stroke:#15803d",
    SIGNATURE: "fill:#f3e8ff,stroke:#7e22ce",
    DECISION: "fill:#fee2e2,stroke:#b91c1c",
    EVIDENCE: "fill:#f1f5f9,stroke:#475569",
}


def render_mermaid(lineage: Lineage) -> str:
    """A Mermaid flowchart (paste into Markdown inside a ```mermaid block)."""
    ids = {node.id: f"n{i}" for i, node in enumerate(lineage.nodes)}
    lines = ["flowchart LR"]
    for node in lineage.nodes:
        text = "<br/>".join(_mermaid_text(part) for part in _label(node))
        lines.append(f"  {ids[node.id]}{_MERMAID_SHAPES[node.kind](text)}")
    lines.extend(
        f'  {ids[e.source]} -->|"{_mermaid_text(e.label)}"| {ids[e.target]}'
        for e in lineage.edges
        if e.source in ids and e.target in ids
    )
    present = [kind for kind in _MERMAID_SHAPES if lineage.of_kind(kind)]
    lines.extend(f"  classDef {kind} {_MERMAID_STYLES[kind]}" for kind in present)
    lines.extend(f"  class {ids[n.id]} {n.kind}" for n in lineage.nodes)
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Lineage], str]] = {
    "text": render_text,
    "dot": render_dot,
    "mermaid": render_mermaid,
}
