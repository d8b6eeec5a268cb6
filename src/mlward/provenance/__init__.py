"""Provenance: hashing, OMS signature bundles, signers and verification, the transparency log,
lineage and ML-BOMs.

The public pieces other parts of mlward build on:

- ``hashing.hash_model`` -> ``manifest.Manifest`` (``root_digest``, ``file_digests``);
- ``oms.sign_statement`` signs any in-toto statement into a Sigstore bundle with a DSSE envelope;
- ``verify.verify_model`` checks a model against a bundle and says exactly what differs;
- ``lineage`` records a training run as signed SLSA provenance, verifies it, and reads the chain
  data -> run -> model -> signatures -> decisions back from the log (``lineage_render`` draws it);
- ``bom`` builds a strictly validated CycloneDX 1.6 ML-BOM (the ``bom`` extra).
"""

from __future__ import annotations
