"""Provenance: hashing, signing, the transparency log, lineage and ML-BOMs."""
