"""The tensor-parallel MLP block of tp_block_pt, on mindspore.communication (one cell per rank under msrun;
in one process, the plain block). The row-parallel layer's all-reduce has an identity backward (a Cell with
bprop): MindSpore's own backward of AllReduce is another AllReduce, which would scale the sharded gradients by
the number of ranks. The column-parallel layer's input enters through the converse (identity forward,
all-reduce backward), as in tp_block_pt."""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeUniform, initializer

DIM, HIDDEN, TOKENS = 16, 64, 8


def _world() -> int:
    try:
        from mindspore.communication import GlobalComm, get_group_size

        return get_group_size() if GlobalComm.INITED else 1
    except (ImportError, RuntimeError):
        return 1


class SumOverRanks(nn.Cell):
    """AllReduce (sum) forward, identity backward."""

    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce() if _world() > 1 else None

    def construct(self, x):
        return self.all_reduce(x) if self.all_reduce is not None else x

    def bprop(self, x, out, dout):
        return (dout,)


class CopyToRanks(nn.Cell):
    """Identity forward, AllReduce (sum) backward."""

    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce() if _world() > 1 else None

    def construct(self, x):
        return x

    def bprop(self, x, out, dout):
        return (self.all_reduce(dout) if self.all_reduce is not None else dout,)


class ColumnParallelDense(nn.Dense):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels // _world())
        self.copy = CopyToRanks()

    def construct(self, x):
        return super().construct(self.copy(x))


class RowParallelDense(nn.Cell):
    def __init__(self, in_channels: int, out_channels: int, reduce: nn.Cell | None = None):
        super().__init__()
        self.weight = Parameter(initializer(HeUniform(), (out_channels, in_channels // _world())), name="weight")
        self.bias = Parameter(initializer("zeros", (out_channels,)), name="bias")
        self.reduce = reduce if reduce is not None else SumOverRanks()

    def construct(self, x):
        return self.reduce(ops.matmul(x, self.weight.T)) + self.bias


class TPBlock(nn.Cell):
    def __init__(self, dim: int = DIM, hidden: int = HIDDEN, fc2: nn.Cell | None = None):
        super().__init__()
        self.norm = nn.LayerNorm((dim,), epsilon=1e-5)
        self.fc1 = ColumnParallelDense(dim, hidden)
        self.act = nn.GELU(approximate=False)
        self.fc2 = fc2 if fc2 is not None else RowParallelDense(hidden, dim)

    def construct(self, x):
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


PLACEMENTS = {"fc1.weight": "shard(0)", "fc1.bias": "shard(0)", "fc2.weight": "shard(1)"}


def build():
    """The block (this rank's slice under msrun), an example input and the placements."""
    return {"net": TPBlock(), "inputs": (Tensor(np.zeros((2, TOKENS, DIM), np.float32)),), "placements": PLACEMENTS}


class _NoReduce(nn.Cell):
    def construct(self, x):
        return x


def build_missing_all_reduce():
    """A porting bug: the row-parallel layer's partial products are never summed over the ranks."""
    block = TPBlock(fc2=RowParallelDense(HIDDEN, DIM, reduce=_NoReduce()))
    return {"net": block, "inputs": (Tensor(np.zeros((2, TOKENS, DIM), np.float32)),), "placements": PLACEMENTS}


class _BiasOnEveryRank(RowParallelDense):
    def construct(self, x):
        return self.reduce(ops.matmul(x, self.weight.T) + self.bias)  # the bias summed once per rank


def build_bias_on_every_rank():
    """A porting bug: the row-parallel layer adds its bias before the all-reduce, so once on every rank."""
    block = TPBlock(fc2=_BiasOnEveryRank(HIDDEN, DIM))
    return {"net": block, "inputs": (Tensor(np.zeros((2, TOKENS, DIM), np.float32)),), "placements": PLACEMENTS}
