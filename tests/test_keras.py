"""Keras v3 archives and legacy HDF5 models, built with the real Keras (torch backend) in a
subprocess; the hostile Lambda sample is proven to run with the real loader in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlward import ScanOptions, Verdict, scan

BUILD = textwrap.dedent(
    """
    import os, sys
    import keras
    out, marker = sys.argv[1], sys.argv[2]

    @keras.saving.register_keras_serializable(package="mypkg")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2

    def dense():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])

    dense().save(os.path.join(out, "plain.keras"))
    dense().save(os.path.join(out, "plain.h5"))
    inner = dense()
    keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)]).save(
        os.path.join(out, "nested.keras"))
    inp = keras.Input((4,))
    merged = keras.layers.Concatenate()([keras.layers.Dense(2)(inp), keras.layers.Dense(2)(inp)])
    keras.Model(inp, merged).save(os.path.join(out, "functional.keras"))
    keras.Sequential([keras.Input((4,)), keras.layers.Lambda(keras.activations.relu)]).save(
        os.path.join(out, "named_lambda.keras"))
    keras.Sequential([keras.Input((4,)), Scale()]).save(os.path.join(out, "custom.keras"))
    payload = eval(f"lambda x: (open({marker!r}, 'w').write('ran'), x)[1]")
    evil = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Lambda(payload)])
    evil.save(os.path.join(out, "lambda.keras"))
    evil.save(os.path.join(out, "lambda.h5"))
    """
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("keras")
    marker = out / "marker"
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    subprocess.run(
        [sys.executable, "-c", BUILD, str(out), str(marker)], check=True, env=env, timeout=300,
        capture_output=True,
    )
    # Keras calls the lambda once while building the model to infer its output shape.
    marker.unlink(missing_ok=True)
    return out, marker


@pytest.mark.parametrize(
    "name", ["plain.keras", "plain.h5", "nested.keras", "functional.keras", "named_lambda.keras"]
)
def test_benign_keras_models_are_clean(models: tuple[Path, Path], name: str) -> None:
    art = scan([models[0] / name]).artifacts[0]
    assert art.verdict is Verdict.CLEAN, [f.message for f in art.findings]
    assert art.formats[0] in {"keras", "keras-h5"}


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_lambda_bytecode_is_flagged_and_really_runs(models: tuple[Path, Path], name: str) -> None:
    out, marker = models
    art = scan([out / name]).artifacts[0]
    assert art.verdict is Verdict.MALICIOUS
    assert any(f.rule_id == "MW981" for f in art.findings)
    assert not marker.exists()
    loader = (
        "import sys, keras; keras.saving.load_model(sys.argv[1], safe_mode=False)"
        "(__import__('numpy').ones((1, 4)))"
    )
    subprocess.run(
        [sys.executable, "-c", loader, str(out / name)],
        env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=300, capture_output=True,
        check=False,
    )
    assert marker.exists()
    marker.unlink()


def test_custom_objects_are_suspicious_until_allowed(models: tuple[Path, Path]) -> None:
    path = models[0] / "custom.keras"
    art = scan([path]).artifacts[0]
    assert art.verdict is Verdict.SUSPICIOUS
    finding = next(f for f in art.findings if f.rule_id == "MW983")
    assert finding.fix == "--allow mypkg.Scale"
    allowed = scan([path], ScanOptions(allow=("mypkg.Scale",))).artifacts[0]
    assert allowed.verdict is Verdict.CLEAN
