"""The ViT pair bench/bench_locate.py times: its Config, and the factories its spawned workers build the nets with."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # a worker loads this file by path: `examples` must be importable from it
    sys.path.insert(0, str(REPO))
CONFIG_ENV = "MSPARITY_BENCH_LOCATE"  # JSON of Config, read by the factories in the spawned workers
BUGS = ("eps", "gelu", "residual")


@dataclass(frozen=True)
class Config:
    image: int = 64
    patch: int = 8
    dim: int = 256
    depth: int = 8
    heads: int = 8
    hidden: int = 1024
    batch: int = 8
    classes: int = 10
    bug: str = "eps"

    @property
    def bug_block(self) -> int:
        return self.depth // 2

    @property
    def expected_blame(self) -> str:
        i = self.bug_block
        return {"eps": f"blocks.{i}.norm2", "gelu": f"blocks.{i}.mlp.act", "residual": f"blocks.{i}"}[self.bug]

    def vit_kwargs(self) -> dict:
        return {"image": self.image, "patch": self.patch, "dim": self.dim, "depth": self.depth, "heads": self.heads,
                "hidden": self.hidden, "num_classes": self.classes}


QUICK = Config(image=32, patch=8, dim=64, depth=2, heads=4, hidden=128, batch=2)  # the bundled example's size


def _config() -> Config:
    text = os.environ.get(CONFIG_ENV)
    return Config(**json.loads(text)) if text else Config()


# -- factories, run inside the spawned workers (each imports only its framework) -------------------

def build_big_pt():
    """examples.vit_pt.ViT at the benchmark's size, and an example batch."""
    import torch

    from examples import vit_pt

    cfg = _config()
    torch.manual_seed(0)
    return vit_pt.ViT(**cfg.vit_kwargs()), (torch.randn(cfg.batch, 3, cfg.image, cfg.image),)


def _ms_example(cfg: Config):
    import numpy as np
    from mindspore import Tensor

    return (Tensor(np.zeros((cfg.batch, 3, cfg.image, cfg.image), np.float32)),)


def build_big_ms():
    """examples.vit_ms.ViT at the benchmark's size: the correct port."""
    from examples import vit_ms

    cfg = _config()
    return vit_ms.ViT(**cfg.vit_kwargs()), _ms_example(cfg)


def build_big_ms_bug():
    """The port with one porting bug in block depth // 2 (Config.bug)."""
    from mindspore import nn, ops

    from examples import vit_ms

    cfg = _config()
    net = vit_ms.ViT(**cfg.vit_kwargs())
    block = net.blocks[cfg.bug_block]
    if cfg.bug == "eps":
        block.norm2.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-6)
    elif cfg.bug == "gelu":
        block.mlp.act = nn.GELU(approximate=True)
    else:
        block.residual = False
    return net, _ms_example(cfg)
