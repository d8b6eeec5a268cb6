"""JSON Schemas shipped with mlward (package data, read through importlib.resources)."""
