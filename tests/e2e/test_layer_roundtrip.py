"""Every verified layer of LAYER_FACTS.md section 1: torch weights -> rules -> .ckpt -> mindspore, same outputs."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import nn as msnn

import pt_worker
from coordinator import convert_weight


def first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


class PtWrap(torch.nn.Module):
    def __init__(self, layer, call):
        super().__init__()
        self.layer = layer
        self.call = call

    def forward(self, x):
        return first(self.call(self.layer, x))


class MsWrap(msnn.Cell):
    def __init__(self, layer, call):
        super().__init__()
        self.layer = layer
        self.call = call

    def construct(self, x):
        return first(self.call(self.layer, x))


def plain(layer, x):
    return layer(x)


def attention(layer, x):
    return layer(x, x, x)


def rnn(layer, x):
    return layer(x)[0]


class PtScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.randn(5))

    def forward(self, x):
        return x * self.scale


class MsScale(msnn.Cell):
    def __init__(self):
        super().__init__()
        self.scale = ms.Parameter(ms.Tensor(np.zeros(5, np.float32)))

    def construct(self, x):
        return x * self.scale


# name: (torch layer, mindspore layer, input shape, call)
CASES = {
    "Linear": (lambda: torch.nn.Linear(6, 4), lambda: msnn.Dense(6, 4), (3, 6), plain),
    "Conv1d": (lambda: torch.nn.Conv1d(3, 4, 3, padding=1),
               lambda: msnn.Conv1d(3, 4, 3, pad_mode="pad", padding=1, has_bias=True), (2, 3, 9), plain),
    "Conv2d": (lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding=(1, 2), dilation=1),
               lambda: msnn.Conv2d(3, 4, 3, stride=2, pad_mode="pad", padding=(1, 1, 2, 2), has_bias=True),
               (2, 3, 9, 9), plain),
    "Conv2d groups": (lambda: torch.nn.Conv2d(4, 4, 3, padding=1, groups=2),
                      lambda: msnn.Conv2d(4, 4, 3, pad_mode="pad", padding=1, group=2, has_bias=True),
                      (1, 4, 6, 6), plain),
    "Conv3d": (lambda: torch.nn.Conv3d(2, 3, 3, padding=1),
               lambda: msnn.Conv3d(2, 3, 3, pad_mode="pad", padding=1, has_bias=True), (1, 2, 5, 5, 5), plain),
    "ConvTranspose2d": (lambda: torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1),
                        lambda: msnn.Conv2dTranspose(3, 4, 3, stride=2, pad_mode="pad", padding=1, has_bias=True),
                        (1, 3, 5, 5), plain),
    "BatchNorm1d": (lambda: torch.nn.BatchNorm1d(5), lambda: msnn.BatchNorm1d(5), (4, 5), plain),
    "BatchNorm2d": (lambda: torch.nn.BatchNorm2d(3), lambda: msnn.BatchNorm2d(3), (2, 3, 4, 4), plain),
    "BatchNorm3d": (lambda: torch.nn.BatchNorm3d(2), lambda: msnn.BatchNorm3d(2), (1, 2, 3, 3, 3), plain),
    "LayerNorm": (lambda: torch.nn.LayerNorm(6), lambda: msnn.LayerNorm((6,), epsilon=1e-5), (3, 6), plain),
    "LayerNorm 2-D": (lambda: torch.nn.LayerNorm((4, 6)),
                      lambda: msnn.LayerNorm((4, 6), begin_norm_axis=1, begin_params_axis=1, epsilon=1e-5),
                      (3, 4, 6), plain),
    "GroupNorm": (lambda: torch.nn.GroupNorm(2, 4), lambda: msnn.GroupNorm(2, 4), (2, 4, 3, 3), plain),
    "Embedding": (lambda: torch.nn.Embedding(10, 4), lambda: msnn.Embedding(10, 4), (2, 5), plain),
    "PReLU": (lambda: torch.nn.PReLU(3), lambda: msnn.PReLU(channel=3), (2, 3, 4), plain),
    "LSTM": (lambda: torch.nn.LSTM(4, 5, 2, bidirectional=True, batch_first=True),
             lambda: msnn.LSTM(4, 5, 2, bidirectional=True, batch_first=True), (2, 3, 4), rnn),
    "GRU": (lambda: torch.nn.GRU(4, 5, batch_first=True), lambda: msnn.GRU(4, 5, batch_first=True), (2, 3, 4), rnn),
    "MultiheadAttention": (lambda: torch.nn.MultiheadAttention(8, 2), lambda: msnn.MultiheadAttention(8, 2),
                           (5, 2, 8), attention),
    "TransformerEncoderLayer": (
        lambda: torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
        lambda: msnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), (2, 3, 8), plain),
}


def randomise(module: torch.nn.Module) -> None:
    """Non-trivial values everywhere, running statistics included."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name else torch.randn_like(tensor) * 0.5)


@pytest.mark.parametrize("case", list(CASES) + ["bare Parameter"])
def test_layer_round_trips_through_the_rules(case, tmp_path):
    torch.manual_seed(0)
    if case == "bare Parameter":
        pt_net, ms_net, shape = PtScale(), MsScale(), (3, 5)
    else:
        make_pt, make_ms, shape, call = CASES[case]
        pt_net, ms_net = PtWrap(make_pt(), call), MsWrap(make_ms(), call)
    randomise(pt_net)
    torch.save(pt_net.state_dict(), tmp_path / "w.pth")
    convert_weight(pt_file_path=tmp_path / "w.pth", ms_file_save_path=tmp_path / "w.ckpt",
                   weight_map=pt_worker.get_weight_map(pt_net), print_conv_info=False, print_save_path=False)
    not_loaded, _ = ms.load_param_into_net(ms_net, ms.load_checkpoint(str(tmp_path / "w.ckpt")), strict_load=True)
    assert not_loaded == [], f"{case}: mindspore parameters left unset: {not_loaded}"
    rng = np.random.default_rng(1)
    x = rng.integers(0, 10, shape) if case == "Embedding" else rng.standard_normal(shape).astype(np.float32)
    pt_net.eval()
    ms_net.set_train(False)
    with torch.no_grad():
        expected = pt_net(torch.from_numpy(x)).numpy()
    got = ms_net(ms.Tensor(x)).asnumpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5, case
