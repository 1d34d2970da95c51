"""The tensor-parallel MLP block of tp_block_pt written with torch's own tensor parallelism (DTensor):
``parallelize_module`` splits fc1 and the head by columns (the head's output gathered) and fc2 by rows over a 1-D
device mesh, and the worker reads each parameter's placement from its DTensor (no "placements" in the factory).
The activations torch's plans leave as each rank's local slice are declared (module outputs are plain local
tensors, so no DTensor tells their placement). In one process it is the plain block."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

DIM, HIDDEN, TOKENS, VOCAB = 16, 64, 8, 32


class Block(nn.Module):
    def __init__(self, dim: int = DIM, hidden: int = HIDDEN, vocab: int = VOCAB):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, x):
        return self.head(x + self.fc2(self.act(self.fc1(self.norm(x)))))


ACTIVATIONS = {"fc1": "shard(-1)", "act": {"inputs": "shard(-1)", "outputs": "shard(-1)"},
               "fc2": {"inputs": "shard(-1)"}}


def build():
    torch.manual_seed(0)  # every rank builds the same whole block; parallelize_module keeps each rank's slice
    block = Block()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import Replicate
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

        mesh = init_device_mesh("cpu", (dist.get_world_size(),))
        block = parallelize_module(block, mesh, {"fc1": ColwiseParallel(), "fc2": RowwiseParallel(),
                                                 "head": ColwiseParallel(output_layouts=Replicate())})
    return {"net": block, "inputs": (torch.zeros(2, TOKENS, DIM),), "activations": ACTIVATIONS}
