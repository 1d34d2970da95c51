"""A tensor-parallel transformer MLP block and head (PyTorch side), Megatron style, on torch.distributed.

``head(x + fc2(gelu(fc1(norm(x)))))`` with fc1 column-parallel (each rank holds a slice of its output features:
weight and bias split along dim 0) and fc2 row-parallel (a slice of its input features: weight split along
dim 1), whose partial products are summed over the ranks by an all-reduce before its bias is added once.
fc1's input enters through Megatron's "f" (identity forward, all-reduce backward): each rank's backward
through its slice gives only part of the gradient of what comes before it (the norm, the residual).
The head is column-parallel too, gathering its output's slices from every rank in rank order (an LM head's
logits). Under ``torchrun --nproc-per-node N`` each rank builds its slice; in one process it is the plain block.
The factory declares the placements of the weights and of the activations that are slices on each rank, so a
coordinator can gather full tensors of both.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

DIM, HIDDEN, TOKENS, VOCAB = 16, 64, 8, 32


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) forward, identity backward: the gradient flowing back is the same on every rank."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


class _CopyToRanks(torch.autograd.Function):
    """Identity forward, all-reduce (sum) backward: the gradient of a replicated input from every rank's slice."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _GatherFromRanks(torch.autograd.Function):
    """All-gather along the last dim in rank order forward; each rank's slice of the gradient backward."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(_world())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=-1)

    @staticmethod
    def backward(ctx, grad):
        return grad.chunk(_world(), dim=-1)[_rank()].contiguous()


def copy_to_ranks(x: torch.Tensor) -> torch.Tensor:
    return _CopyToRanks.apply(x) if _world() > 1 else x


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    return _SumOverRanks.apply(x) if _world() > 1 else x


def gather_from_ranks(x: torch.Tensor) -> torch.Tensor:
    return _GatherFromRanks.apply(x) if _world() > 1 else x


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank() -> int:
    return dist.get_rank() if _world() > 1 else 0


def _my_slice(full: torch.Tensor, dim: int) -> torch.Tensor:
    """This rank's slice along dim of a tensor every rank made alike (the same seed): TP=N is the TP=1 block."""
    return full.chunk(_world(), dim)[_rank()].contiguous()


class ColumnParallelLinear(nn.Linear):
    """nn.Linear(in, out) holding out / world of its output features on each rank; ``gather_output``: the whole
    output on every rank (its slices gathered), else this rank's slice of it."""

    def __init__(self, in_features: int, out_features: int, gather_output: bool = False):
        whole = nn.Linear(in_features, out_features)
        super().__init__(in_features, out_features // _world())
        self.gather_output = gather_output
        with torch.no_grad():
            self.weight.copy_(_my_slice(whole.weight, 0))
            self.bias.copy_(_my_slice(whole.bias, 0))

    def forward(self, x):
        out = super().forward(copy_to_ranks(x))
        return gather_from_ranks(out) if self.gather_output else out


class RowParallelLinear(nn.Module):
    """nn.Linear(in, out) holding in / world of its input features on each rank; the sum over ranks, then bias."""

    def __init__(self, in_features: int, out_features: int, reduce=sum_over_ranks):
        super().__init__()
        whole = nn.Linear(in_features, out_features)
        self.weight = nn.Parameter(_my_slice(whole.weight.detach(), 1))
        self.bias = nn.Parameter(whole.bias.detach().clone())  # replicated: the same on every rank
        self.reduce = reduce

    def forward(self, x):
        return self.reduce(x @ self.weight.T) + self.bias


class TPBlock(nn.Module):
    def __init__(self, dim: int = DIM, hidden: int = HIDDEN, vocab: int = VOCAB):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = ColumnParallelLinear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = RowParallelLinear(hidden, dim)
        self.head = ColumnParallelLinear(dim, vocab, gather_output=True)

    def forward(self, x):
        return self.head(x + self.fc2(self.act(self.fc1(self.norm(x)))))


PLACEMENTS = {"fc1.weight": "shard(0)", "fc1.bias": "shard(0)", "fc2.weight": "shard(1)",
              "head.weight": "shard(0)", "head.bias": "shard(0)"}
# what each rank holds of these modules' tensors is its slice along the last dim (the rest is whole)
ACTIVATIONS = {"fc1": "shard(-1)", "act": {"inputs": "shard(-1)", "outputs": "shard(-1)"},
               "fc2": {"inputs": "shard(-1)"}}


def build():
    """The block (this rank's slice of it under torchrun), an example input and the placements."""
    torch.manual_seed(0)  # every rank alike: the replicated tensors must be equal on all of them
    return {"net": TPBlock(), "inputs": (torch.zeros(2, TOKENS, DIM),), "placements": PLACEMENTS,
            "activations": ACTIVATIONS}
