"""PyTorch state dicts, full-module pickles, optimizer/scheduler state and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import BenignSample
from ._common import SEED, pickle_sample, torch_sample

REQ = ("torch",)

DTYPES = (
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "complex64",
    "complex128",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "float8_e4m3fn",
    "float8_e5m2",
)

LEGACY_UNSUPPORTED = {"uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2"}


def _gen() -> Any:
    import torch

    torch.manual_seed(SEED)
    return torch.Generator().manual_seed(SEED)


def _tensor(dtype: str) -> Any:
    import torch

    base = torch.randn(3, 4, generator=_gen()) * 10
    dt = getattr(torch, dtype)
    if dt.is_complex:
        return torch.complex(base, -base).to(dt)
    if dt == torch.bool:
        return base > 0
    if not dt.is_floating_point and dt not in (torch.int64, torch.int32, torch.int16, torch.int8):
        return base.abs().to(dt)
    return base.to(dt)


def _all_dtypes() -> dict[str, Any]:
    return {dtype: _tensor(dtype) for dtype in DTYPES}


def _mlp() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))


def _cnn() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, groups=2, bias=False),
        nn.GroupNorm(2, 4),
        nn.LeakyReLU(0.1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(4, 2),
        nn.Softmax(dim=-1),
    )


def _recurrent() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    return nn.ModuleDict(
        {
            "lstm": nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True),
            "gru": nn.GRU(4, 5),
            "rnn": nn.RNN(4, 3, nonlinearity="tanh"),
            "cell": nn.LSTMCell(4, 3),
        }
    )


def _transformer() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    return nn.ModuleDict(
        {
            "embedding": nn.Embedding(20, 8, padding_idx=0),
            "bag": nn.EmbeddingBag(20, 8, mode="mean"),
            "transformer": nn.Transformer(
                d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                dim_feedforward=16, dropout=0.0,
            ),
            "encoder_gelu": nn.TransformerEncoder(
                nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True),
                num_layers=1,
                enable_nested_tensor=False,
            ),
            "mha": nn.MultiheadAttention(8, 2),
            "norm": nn.LayerNorm(8),
            "act": nn.GELU(),
            "head": nn.ModuleList([nn.Linear(8, 8), nn.SiLU(), nn.Tanh(), nn.Identity()]),
            "params": nn.ParameterList([nn.Parameter(torch.ones(2))]),
            "pdict": nn.ParameterDict({"scale": nn.Parameter(torch.ones(1))}),
        }
    )


def _misc_layers() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    return nn.Sequential(
        nn.Conv1d(2, 2, 3),
        nn.BatchNorm1d(2),
        nn.ConvTranspose1d(2, 2, 3),
        nn.InstanceNorm1d(2, affine=True),
        nn.PReLU(),
        nn.ELU(),
        nn.Hardswish(),
        nn.Mish(),
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        nn.AvgPool1d(2),
        nn.Unflatten(1, (2, 1)),
        nn.Bilinear(3, 3, 2),
    )


def _state_dict() -> Any:
    return _cnn().state_dict()


def _shared_storage() -> dict[str, Any]:
    import torch

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "base": base,
        "row": base[1],
        "col": base[:, 2],
        "transposed": base.t(),
        "strided": base[::2, 1::3],
        "flat_view": base.view(-1),
        "narrow": base.narrow(1, 2, 3),
        "expanded": torch.ones(1, 3).expand(4, 3),
        "channels_last": torch.randn(1, 3, 4, 4, generator=_gen()).to(
            memory_format=torch.channels_last
        ),
        "scalar": torch.tensor(3.5),
        "empty": torch.empty(0, 2),
    }


def _parameters() -> dict[str, Any]:
    import torch
    from torch import nn

    return {
        "weight": nn.Parameter(torch.randn(3, 3, generator=_gen())),
        "frozen": nn.Parameter(torch.zeros(2), requires_grad=False),
        "buffer_like": torch.ones(2),
        "grad_tensor": torch.ones(2, requires_grad=True),
    }


def _quantized() -> dict[str, Any]:
    import torch

    x = torch.randn(4, 3, generator=_gen())
    return {
        "per_tensor_qint8": torch.quantize_per_tensor(x, 0.1, 0, torch.qint8),
        "per_tensor_quint8": torch.quantize_per_tensor(x, 0.05, 128, torch.quint8),
        "per_tensor_qint32": torch.quantize_per_tensor(x, 0.01, 0, torch.qint32),
        "per_channel": torch.quantize_per_channel(
            x, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 1, 2]), 1, torch.qint8
        ),
    }


def _sparse() -> dict[str, Any]:
    import torch

    dense = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    return {
        "coo": dense.to_sparse(),
        "coo_uncoalesced": torch.sparse_coo_tensor(
            torch.tensor([[0, 0, 1], [1, 1, 2]]), torch.tensor([1.0, 2.0, 3.0]), (2, 3)
        ),
        "csr": dense.to_sparse_csr(),
        "csc": dense.to_sparse_csc(),
        "bsr": dense.to_sparse_bsr((1, 1)),
    }


def _meta_objects() -> dict[str, Any]:
    import torch

    return {
        "size": torch.Size([2, 3, 4]),
        "device_cpu": torch.device("cpu"),
        "device_cuda": torch.device("cuda", 1),
        "dtypes": [torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.complex64,
                   torch.quint8, torch.float8_e4m3fn, torch.uint16],
        "layouts": [torch.strided, torch.sparse_coo, torch.sparse_csr],
        "qschemes": [torch.per_tensor_affine, torch.per_channel_affine],
    }


def _optimizer_states() -> dict[str, Any]:
    import torch

    model = _mlp()
    x = torch.randn(5, 8, generator=_gen())
    out: dict[str, Any] = {}
    for name, make in {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3, amsgrad=True),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5),
        "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-2),
    }.items():
        opt = make(model.parameters())
        for _ in range(2):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
        out[name] = opt.state_dict()
    return out


def _scheduler_states() -> dict[str, Any]:
    import torch

    model = _mlp()
    out: dict[str, Any] = {}
    makers = {
        "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10),
        "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10),
        "plateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=2),
        "multistep": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 4]),
        "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
        "warm_restarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 3),
        "cyclic": lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=2),
    }
    for name, make in makers.items():
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = make(opt)
        for _ in range(3):
            opt.step()
            if name == "plateau":
                sched.step(1.0)
            else:
                sched.step()
        out[name] = sched.state_dict()
    return out


def _typed_storage() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _tensor("float32").storage()


def _weight_norm_model() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    with_wn = nn.utils.weight_norm(nn.Conv1d(2, 4, 3))
    with_sn = nn.utils.spectral_norm(nn.Linear(4, 4))
    return nn.Sequential(with_wn, nn.Flatten(), with_sn)


def _checkpoint() -> dict[str, Any]:
    import numpy as np
    import torch

    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return {
        "epoch": 3,
        "global_step": 1200,
        "arch": "mlp",
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": opt.state_dict(),
        "scheduler": _scheduler_states()["step"],
        "losses": [0.9, 0.5, 0.25],
        "best_metric": float("inf"),
        "np_metric": np.float64(0.875),
        "np_history": np.linspace(0, 1, 5),
        "config": {"lr": 1e-3, "layers": [8, 16, 3], "tags": ("a", "b"), "use_amp": False},
        "rng_state": torch.get_rng_state(),
        "dtype": torch.float32,
        "shape": torch.Size([8, 16]),
        "device": torch.device("cpu"),
    }


def samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    # One state dict per dtype (zip format), plus all dtypes in one legacy file.
    for dtype in DTYPES:
        out.append(torch_sample(f"torch_dtype_{dtype}", lambda d=dtype: {"t": _tensor(d)}))
    # The legacy format cannot round-trip dtypes that have no typed storage class
    # (uint16/32/64, float8): torch.load itself fails on them, so they stay zip-only.
    legacy_ok = lambda: {k: v for k, v in _all_dtypes().items()  # noqa: E731
                         if k not in LEGACY_UNSUPPORTED}
    out.append(torch_sample("torch_all_dtypes_legacy", legacy_ok, legacy=True))
    for name, make in {
        "state_dict": _state_dict,
        "shared_storage": _shared_storage,
        "parameters": _parameters,
        "quantized": _quantized,
        "meta_objects": _meta_objects,
        "optimizer_states": _optimizer_states,
        "scheduler_states": _scheduler_states,
        "checkpoint": _checkpoint,
    }.items():
        out.append(torch_sample(f"torch_{name}", make))
        out.append(torch_sample(f"torch_{name}_legacy", make, legacy=True))
    out.append(torch_sample("torch_sparse", _sparse))
    out.append(torch_sample("torch_sparse_legacy", lambda: {"coo": _sparse()["coo"]}, legacy=True))
    for proto in (3, 4, 5):
        out.append(torch_sample(f"torch_state_dict_proto{proto}", _state_dict,
                                pickle_protocol=proto))
    # Full nn.Module pickles built only from torch.nn layers.
    for name, make in {
        "mlp": _mlp,
        "cnn": _cnn,
        "recurrent": _recurrent,
        "transformer": _transformer,
        "misc_layers": _misc_layers,
        "weight_norm": _weight_norm_model,
    }.items():
        out.append(torch_sample(f"torch_module_{name}", make))
        out.append(torch_sample(f"torch_module_{name}_legacy", make, legacy=True))
    # Plain pickle of tensors, parameters and modules (protocols 2..5).
    for proto in (2, 3, 4, 5):
        out.append(
            pickle_sample(
                f"torch_pickle_tensors_p{proto}",
                lambda: {**_shared_storage(), **_parameters(), "bf16": _tensor("bfloat16")},
                proto,
                REQ,
            )
        )
    out.append(pickle_sample("torch_pickle_module_p4", _mlp, 4, REQ))
    out.append(pickle_sample("torch_pickle_quantized_p5", _quantized, 5, REQ))
    # pickle.dumps(storage) embeds a legacy torch.save stream via torch.storage._load_from_bytes.
    # (Plain pickling of an UntypedStorage does not load back in this torch; TypedStorage does.)
    out.append(pickle_sample("torch_pickle_storage_p2", _typed_storage, 2, REQ))
    # Training checkpoints that pickle the optimizer, scheduler and scaler objects themselves.
    out.append(torch_sample("torch_full_training_objects", _training_objects))
    # TorchScript archives: torch.load hands them to torch.jit.load.
    for kind in ("script", "trace"):
        out.append(
            BenignSample(
                name=f"torchscript_{kind}",
                build=lambda d, k=kind: _torchscript(d, k),
                loader="torch",
                requires=("torch",),
            )
        )
    return out


def _training_objects() -> dict[str, Any]:
    import torch

    model = _mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(2, 8)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    return {
        "model": model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": torch.amp.GradScaler("cpu"),
        "epoch": 1,
    }


def _torchscript(out_dir: Path, kind: str) -> Path:
    import torch

    model = _mlp().eval()
    compiled = (
        torch.jit.script(model) if kind == "script" else torch.jit.trace(model, torch.ones(1, 8))
    )
    path = out_dir / f"torchscript_{kind}.pt"
    torch.jit.save(compiled, str(path))
    return path
