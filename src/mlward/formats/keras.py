"""Keras models: the v3 ``.keras`` zip (``config.json``) and legacy HDF5 (the ``model_config``
attribute). The code they can carry sits in the layer config: ``Lambda`` layers with marshaled
Python bytecode, and objects named by ``module`` / ``class_name`` / ``registered_name`` that
Keras imports when it rebuilds the model. The config is read as JSON; nothing is imported,
unmarshaled or run.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

_PRINTABLE = re.compile(rb"[\x20-\x7e]{3,}")
# Module prefixes of Keras itself (v3 writes "keras.layers", "keras.src...", tf.keras wrote
# "keras" or nothing at all).
_KERAS_MODULES = (
    "keras",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
    # Keras' own model libraries, which Keras 3 itself treats as built in.
    "keras_hub",
    "keras_cv",
    "keras_nlp",
)


class KerasObject(NamedTuple):
    """One object the config asks Keras to rebuild, where it sits, and any code it carries."""

    path: str
    class_name: str
    module: str | None
    registered_name: str | None
    bytecode: bytes | None = None
    function_name: str | None = None


def is_keras_archive(names: list[str]) -> bool:
    return "config.json" in names and "metadata.json" in names


def parse_config(text: str | bytes) -> Any:
    return json.loads(text)


def objects(config: Any, path: str = "$") -> Iterator[KerasObject]:
    """Every serialized object at any depth: nested models, wrappers, functional graphs."""
    if isinstance(config, list):
        for index, item in enumerate(config):
            yield from objects(item, f"{path}[{index}]")
        return
    if not isinstance(config, dict):
        return
    class_name = config.get("class_name")
    if isinstance(class_name, str):
        module = config.get("module")
        registered = config.get("registered_name")
        yield KerasObject(
            path,
            class_name,
            module if isinstance(module, str) else None,
            registered if isinstance(registered, str) else None,
            _bytecode(config),
            config.get("config")
            if class_name == "function" and isinstance(config.get("config"), str)
            else None,
        )
    for key, value in config.items():
        yield from objects(value, f"{path}.{key}")


def _bytecode(entry: dict[str, Any]) -> bytes | None:
    """Marshaled code of a serialized lambda (v3: __lambda__; legacy: a base64 string)."""
    inner = entry.get("config")
    code: Any = None
    if entry.get("class_name") == "__lambda__" and isinstance(inner, dict):
        code = inner.get("code")
    elif entry.get("class_name") == "Lambda" and isinstance(inner, dict):
        function = inner.get("function")
        if isinstance(function, list) and function and isinstance(function[0], str):
            code = function[0]  # tf.keras 2: [base64 code, defaults, closure]
        elif isinstance(function, str) and inner.get("function_type") == "lambda":
            code = function
    if not isinstance(code, str):
        return None
    try:
        return base64.b64decode(code.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return code.encode("utf-8", "replace")


def strings_in(code: bytes, limit: int = 12) -> list[str]:
    """Readable names inside bytecode (co_names, constants): evidence without unmarshaling."""
    return [m.decode("ascii") for m in _PRINTABLE.findall(code)[:limit]]


def is_keras_module(module: str | None) -> bool:
    return module is None or module.split(".")[0] in {m.split(".")[0] for m in _KERAS_MODULES}


def names_keras_builtin(obj: KerasObject) -> bool:
    """Keras writes its own functions (activations, losses) as module "builtins" + a bare name
    and looks them up among Keras' functions, never in Python's builtins."""
    return obj.module == "builtins" and obj.class_name == "function"


def custom_name(obj: KerasObject) -> tuple[str, str] | None:
    """(module, name) of an object Keras must import from outside Keras, if any."""
    if obj.registered_name and ">" in obj.registered_name:
        package, _, name = obj.registered_name.partition(">")
        return package, name
    if names_keras_builtin(obj) and obj.function_name:
        return "builtins", obj.function_name
    if obj.module and not is_keras_module(obj.module):
        name = (
            obj.function_name
            if obj.class_name == "function" and obj.function_name
            else obj.class_name
        )
        return obj.module, name
    return None
