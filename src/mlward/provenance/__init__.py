"""Provenance: hashing, OMS signature bundles, signers and verification, the transparency log,
lineage and ML-BOMs.

The public pieces other parts of mlward build on:

- ``hashing.hash_model`` -> ``manifest.Manifest`` (``root_digest_hex``, ``digests()``), and the
  shortcuts ``hashing.root_digest`` and ``hashing.file_digests``;
- ``oms.sign_statement`` signs any in-toto statement into a Sigstore bundle with a DSSE
  envelope, with the signers of ``signers`` (``KeySigner``, ``CertificateSigner``,
  ``SigstoreSigner``); ``verify.verify_statement`` checks one and returns it;
- ``verify.sign_model`` / ``verify.verify_model`` sign a model and verify it, saying exactly what
  differs (``VerificationResult``);
- ``lineage`` records a training run as signed SLSA provenance, verifies it, and reads the chain
  data -> run -> model -> signatures -> decisions back from the log (``lineage_render`` draws it);
- ``bom`` builds a strictly validated CycloneDX 1.6 ML-BOM (the ``bom`` extra).
"""

from __future__ import annotations
