"""Differential test: mlward reports every global CPython's unpicklers would resolve."""

from __future__ import annotations

import pytest

from tests import fuzzing

CASES = 20_000
CHUNK = 2_500


@pytest.mark.parametrize("start", range(0, CASES, CHUNK))
def test_generated_and_mutated_streams(start: int) -> None:
    ran, failures = fuzzing.run(CHUNK, start=start)
    assert ran == CHUNK
    assert not failures, f"missed globals (seed, names): {failures[:5]}"


def test_the_reference_sees_what_it_should() -> None:
    # Guard against a reference that silently resolves nothing (a test that could never fail).
    gadget = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R."
    assert ("os", "system") in fuzzing.reference_globals(gadget)
    assert ("os", "system") in fuzzing.mlward_globals(gadget)


def test_a_broken_scanner_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzzing, "mlward_globals", lambda data: set())
    _, failures = fuzzing.run(200)
    assert failures
