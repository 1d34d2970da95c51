"""A small MLP (MindSpore side); same attribute names as mlp_pt, so weights map by layer rules."""

import numpy as np
from mindspore import Tensor, nn


class MLP(nn.Cell):
    def __init__(self, in_features=16, hidden=32, out_features=4):
        super().__init__()
        self.fc1 = nn.Dense(in_features, hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Dense(hidden, hidden)
        self.act2 = nn.Tanh()
        self.fc3 = nn.Dense(hidden, out_features)

    def construct(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


def build():
    return MLP(), (Tensor(np.zeros((8, 16), np.float32)),)
