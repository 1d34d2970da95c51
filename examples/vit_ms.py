"""A small ViT-like transformer (MindSpore side), a faithful port of vit_pt.

torch defaults are stated explicitly where MindSpore's differ: LayerNorm epsilon=1e-5 (MS 1e-7),
GELU approximate=False (MS tanh), Conv2d pad_mode='valid' + has_bias=True. ``build_*_bug``
factories are the classic porting mistakes, for tests and for trying the tool.
"""

import numpy as np
from mindspore import Parameter, Tensor, nn, ops


class Attention(nn.Cell):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Dense(dim, dim * 3)
        self.proj = nn.Dense(dim, dim)

    def construct(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ops.softmax(ops.matmul(q, k.swapaxes(-2, -1)) * self.scale, axis=-1)
        return self.proj(ops.matmul(attn, v).swapaxes(1, 2).reshape(b, n, d))


class Mlp(nn.Cell):
    def __init__(self, dim, hidden, gelu_approximate):
        super().__init__()
        self.fc1 = nn.Dense(dim, hidden)
        self.act = nn.GELU(approximate=gelu_approximate)
        self.fc2 = nn.Dense(hidden, dim)

    def construct(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Cell):
    def __init__(self, dim, heads, hidden, epsilon=1e-5, gelu_approximate=False, residual=True):
        super().__init__()
        self.norm1 = nn.LayerNorm((dim,), epsilon=epsilon)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm((dim,), epsilon=epsilon)
        self.mlp = Mlp(dim, hidden, gelu_approximate)
        self.residual = residual

    def construct(self, x):
        x = x + self.attn(self.norm1(x))
        if self.residual:
            return x + self.mlp(self.norm2(x))
        return self.mlp(self.norm2(x))


class ViT(nn.Cell):
    def __init__(self, image=32, patch=8, dim=64, depth=2, heads=4, hidden=128, num_classes=10,
                 epsilon=1e-5, gelu_approximate=False, residual=True):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch, pad_mode="valid", has_bias=True)
        self.cls_token = Parameter(Tensor(np.zeros((1, 1, dim), np.float32)))
        self.pos_embed = Parameter(Tensor(np.zeros((1, (image // patch) ** 2 + 1, dim), np.float32)))
        self.blocks = nn.CellList(
            [Block(dim, heads, hidden, epsilon, gelu_approximate, residual) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm((dim,), epsilon=1e-5)
        self.head = nn.Dense(dim, num_classes)

    def construct(self, x):
        x = self.patch_embed(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).swapaxes(1, 2)
        cls = ops.broadcast_to(self.cls_token, (x.shape[0], -1, -1))
        x = ops.cat((cls, x), axis=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def _example():
    return (Tensor(np.zeros((2, 3, 32, 32), np.float32)),)


def build():
    return ViT(), _example()


def build_gelu_bug():
    """GELU left at MindSpore's default (tanh approximation); torch uses the exact erf form."""
    return ViT(gelu_approximate=True), _example()


def build_layernorm_eps_bug():
    """Block LayerNorms left at MindSpore's default epsilon 1e-7; torch uses 1e-5."""
    return ViT(epsilon=1e-7), _example()


def build_residual_bug():
    """The MLP residual connection dropped in every block."""
    return ViT(residual=False), _example()
