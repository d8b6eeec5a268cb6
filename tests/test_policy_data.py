"""The compiled policy data that scans import must say exactly what the reviewed TOML says."""

from __future__ import annotations

from pathlib import Path

from mlward.scanning import policy


def test_compiled_policy_data_matches_the_toml_files() -> None:
    expected = policy.compiled_lists_source(policy.read_packaged_lists())
    actual = Path(policy.COMPILED_MODULE).read_text(encoding="utf-8")
    assert actual == expected, "run scripts/compile_policy_data.py to refresh _policy_data.py"


def test_scans_use_the_same_entries_as_the_toml_files() -> None:
    assert policy._packaged_lists() == policy.read_packaged_lists()


def test_a_changed_reason_changes_the_compiled_source() -> None:
    lists = policy.read_packaged_lists()
    name, (reason, source) = next(iter(lists.allowed.items()))
    changed = policy._Lists(
        {**lists.allowed, name: (reason + " (edited)", source)},
        lists.denied_names,
        lists.denied_modules,
    )
    assert policy.compiled_lists_source(changed) != policy.compiled_lists_source(lists)
