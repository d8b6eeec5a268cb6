"""Provenance: hashing, OMS signature bundles, signers and verification, the transparency log,
lineage and ML-BOMs.

The public pieces other parts of mlward build on:

- ``hashing.hash_model`` -> ``manifest.Manifest`` (``root_digest``, ``file_digests``);
- ``oms.sign_statement`` signs any in-toto statement into a Sigstore bundle with a DSSE envelope;
- ``verify.verify_model`` checks a model against a bundle and says exactly what differs.
"""

from __future__ import annotations
