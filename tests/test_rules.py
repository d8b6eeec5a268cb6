"""Every rule id the code can report is catalogued, documented in the README, and vice versa."""

from __future__ import annotations

import re
from pathlib import Path

from mlward.rules import RULES

ROOT = Path(__file__).resolve().parent.parent


def _ids_in_source() -> set[str]:
    text = "".join(
        p.read_text() for p in (ROOT / "src" / "mlward").rglob("*.py") if p.name != "rules.py"
    )
    return set(re.findall(r"\bMW\d{3}\b", text))


def test_every_reported_rule_is_catalogued() -> None:
    assert _ids_in_source() == set(RULES)


def test_the_readme_lists_every_rule() -> None:
    readme = (ROOT / "README.md").read_text()
    assert {rule for rule in RULES if f"| {rule} |" not in readme} == set()
