"""The nets the suite measures, built the same way by the spawned workers, the TroubleShooter host and the bound host.

A worker builds ``bench.models:pt_model`` / ``bench.models:ms_model`` from the JSON in ``MSPARITY_BENCH_MODEL``
(``{"kind": "vit" | "mlp" | "big", "kwargs": {...}, "input_shape": [...]}``); the hosts call ``build_pt`` /
``build_ms`` with the same dict. Each module imports only the framework it builds with, when it builds.
"""

from __future__ import annotations

import json
import os

MODEL_ENV = "MSPARITY_BENCH_MODEL"


def model_config(kind: str, size) -> dict:
    """The JSON-able description of one net of bench.sizes (Vit, Mlp or Big)."""
    shape = list(size.input_shape()) if hasattr(size, "input_shape") else [1, size.width]
    return {"kind": kind, "kwargs": size.kwargs(), "input_shape": shape}


def _env_config() -> dict:
    return json.loads(os.environ[MODEL_ENV])


def build_pt(config: dict):
    """(torch net, example input) for a config; the net in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    kind, kw = config["kind"], config["kwargs"]
    if kind == "vit":
        from examples.vit_pt import ViT

        net = ViT(**kw)
    elif kind == "mlp":
        from examples.mlp_pt import MLP

        net = MLP(**kw)
    else:
        net = _PtBig(nn, kw["width"], kw["layers"])
    return net.eval(), torch.randn(*config["input_shape"])


def _PtBig(nn, width: int, layers: int):
    import torch

    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([torch.nn.utils.skip_init(nn.Linear, width, width) for _ in range(layers)])
            with torch.no_grad():
                for i, layer in enumerate(self.layers):  # touch every page: the weights are really resident
                    layer.weight.fill_(0.001 * (i + 1))
                    layer.bias.fill_(0.0)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    return Big()


def build_ms(config: dict):
    """(MindSpore net, example input) for a config."""
    import numpy as np
    from mindspore import Tensor, nn

    kind, kw = config["kind"], config["kwargs"]
    if kind == "vit":
        from examples.vit_ms import ViT

        net = ViT(**kw)
    elif kind == "mlp":
        from examples.mlp_ms import MLP

        net = MLP(**kw)
    else:
        class Big(nn.Cell):
            def __init__(self, width: int, layers: int):
                super().__init__()
                self.layers = nn.CellList([nn.Dense(width, width, weight_init="zeros", bias_init="zeros")
                                           for _ in range(layers)])

            def construct(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x

        net = Big(kw["width"], kw["layers"])
    net.set_train(False)
    return net, Tensor(np.zeros(config["input_shape"], np.float32))


def pt_model():
    """Factory for ``python -m pt_worker --model bench.models:pt_model``."""
    net, example = build_pt(_env_config())
    return net, (example,)


def ms_model():
    """Factory for ``python -m ms_worker --model bench.models:ms_model``."""
    net, example = build_ms(_env_config())
    return net, (example,)
