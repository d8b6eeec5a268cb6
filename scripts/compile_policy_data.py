#!/usr/bin/env python3
"""Compile the packaged allowlists and denylist (TOML, the reviewed source) into
``src/mlward/scanning/_policy_data.py``, which scans import instead of parsing TOML.

Run it after changing any file in ``src/mlward/scanning/allowlists/`` or ``denylist.toml``
(``scripts/gen_allowlists.py`` runs it too); ``tests/test_policy_data.py`` fails until you do.
"""

from __future__ import annotations

from mlward.scanning.policy import COMPILED_MODULE, compiled_lists_source, read_packaged_lists


def main() -> None:
    with open(COMPILED_MODULE, "w", encoding="utf-8") as handle:
        handle.write(compiled_lists_source(read_packaged_lists()))
    print(f"wrote {COMPILED_MODULE}")


if __name__ == "__main__":
    main()
