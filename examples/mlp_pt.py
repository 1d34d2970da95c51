"""A small MLP (PyTorch side)."""

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, in_features=16, hidden=32, out_features=4):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.Tanh()
        self.fc3 = nn.Linear(hidden, out_features)

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


def build():
    """The net and an example input batch (8, 16)."""
    torch.manual_seed(0)
    return MLP(), (torch.randn(8, 16),)
