"""The tensor-parallel MLP block and head of tp_block_pt, on mindspore.communication (one cell per rank under msrun;
in one process, the plain block). The row-parallel layer's all-reduce has an identity backward (a Cell with
bprop): MindSpore's own backward of AllReduce is another AllReduce, which would scale the sharded gradients by
the number of ranks. The column-parallel layer's input enters through the converse (identity forward,
all-reduce backward), as in tp_block_pt, and the head gathers its output's slices in rank order (its backward
keeps this rank's slice of the gradient)."""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeUniform, initializer

DIM, HIDDEN, TOKENS, VOCAB = 16, 64, 8, 32


def _world() -> int:
    try:
        from mindspore.communication import GlobalComm, get_group_size

        return get_group_size() if GlobalComm.INITED else 1
    except (ImportError, RuntimeError):
        return 1


def _rank() -> int:
    from mindspore.communication import get_rank

    return get_rank() if _world() > 1 else 0


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


class GatherFromRanks(nn.Cell):
    """AllGather along the last dim in rank order forward (``order``: which rank's slice goes where), this rank's
    slice of the gradient backward."""

    def __init__(self, order: tuple[int, ...] | None = None):
        super().__init__()
        self.world, self.rank = _world(), _rank()
        self.order = tuple(order if order is not None else range(self.world))
        self.all_gather = ops.AllGather() if self.world > 1 else None

    def construct(self, x):
        if self.all_gather is None:
            return x
        parts = self.all_gather(x.expand_dims(0))  # [world, ...]: AllGather joins along dim 0
        return ops.concat(tuple(parts[r] for r in self.order), axis=-1)

    def bprop(self, x, out, dout):
        if self.all_gather is None:
            return (dout,)
        width = x.shape[-1]
        at = self.order.index(self.rank) * width
        return (dout[..., at: at + width],)


class ColumnParallelDense(nn.Dense):
    def __init__(self, in_channels: int, out_channels: int, gather: nn.Cell | None = None):
        super().__init__(in_channels, out_channels // _world())
        self.copy = CopyToRanks()
        self.gather = gather

    def construct(self, x):
        out = super().construct(self.copy(x))
        return self.gather(out) if self.gather is not None else out


class RowParallelDense(nn.Cell):
    def __init__(self, in_channels: int, out_channels: int, reduce: nn.Cell | None = None):
        super().__init__()
        self.weight = Parameter(initializer(HeUniform(), (out_channels, in_channels // _world())), name="weight")
        self.bias = Parameter(initializer("zeros", (out_channels,)), name="bias")
        self.reduce = reduce if reduce is not None else SumOverRanks()

    def construct(self, x):
        return self.reduce(ops.matmul(x, self.weight.T)) + self.bias


class TPBlock(nn.Cell):
    def __init__(self, dim: int = DIM, hidden: int = HIDDEN, vocab: int = VOCAB, fc2: nn.Cell | None = None,
                 head_gather: nn.Cell | None = None):
        super().__init__()
        self.norm = nn.LayerNorm((dim,), epsilon=1e-5)
        self.fc1 = ColumnParallelDense(dim, hidden)
        self.act = nn.GELU(approximate=False)
        self.fc2 = fc2 if fc2 is not None else RowParallelDense(hidden, dim)
        self.head = ColumnParallelDense(dim, vocab, gather=head_gather or GatherFromRanks())

    def construct(self, x):
        return self.head(x + self.fc2(self.act(self.fc1(self.norm(x)))))


PLACEMENTS = {"fc1.weight": "shard(0)", "fc1.bias": "shard(0)", "fc2.weight": "shard(1)",
              "head.weight": "shard(0)", "head.bias": "shard(0)"}
# slices along the last dim on each rank, and fc2's product before its all-reduce (a partial sum)
ACTIVATIONS = {"fc1": "shard(-1)", "act": {"inputs": "shard(-1)", "outputs": "shard(-1)"},
               "fc2": {"inputs": "shard(-1)"}, "fc2.reduce": {"inputs": "partial"},
               "head.gather": {"inputs": "shard(-1)"}}


def _parts(block: TPBlock) -> dict:
    return {"net": block, "inputs": (Tensor(np.zeros((2, TOKENS, DIM), np.float32)),), "placements": PLACEMENTS,
            "activations": ACTIVATIONS}


def build():
    """The block (this rank's slice under msrun), an example input and the placements."""
    return _parts(TPBlock())


class _NoReduce(nn.Cell):
    def construct(self, x):
        return x


def build_missing_all_reduce():
    """A porting bug: the row-parallel layer's partial products are never summed over the ranks."""
    return _parts(TPBlock(fc2=RowParallelDense(HIDDEN, DIM, reduce=_NoReduce())))


class _BiasOnEveryRank(RowParallelDense):
    def construct(self, x):
        return self.reduce(ops.matmul(x, self.weight.T) + self.bias)  # the bias summed once per rank


def build_bias_on_every_rank():
    """A porting bug: the row-parallel layer adds its bias before the all-reduce, so once on every rank."""
    return _parts(TPBlock(fc2=_BiasOnEveryRank(HIDDEN, DIM)))


def build_wrong_gather_order():
    """A porting bug: the head joins its output's slices in the reverse rank order."""
    return _parts(TPBlock(head_gather=GatherFromRanks(order=tuple(reversed(range(_world()))))))


def build_tanh_gelu():
    """A porting bug that shows in one process too: the activation ported with GELU's tanh approximation."""
    block = TPBlock()
    block.act = nn.GELU(approximate=True)
    return _parts(block)
