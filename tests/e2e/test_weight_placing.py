"""Streamed weights written straight into a MindSpore CPU net's parameters (proto.worker.weight_placing):
the values land, the memory is the parameter's own, optimizers see them, and a broken stream is never half-used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from ms_worker.adapter import MindSporeAdapter
from proto import codec
from proto.codec import CodecError, NamedArray
from proto.errors import FailedPrecondition

REPO = Path(__file__).resolve().parents[2]


class Small(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(6, 4)
        self.scale = ms.Parameter(ms.Tensor(np.ones(4), ms.bfloat16), name="scale")

    def construct(self, x):
        return self.fc(x) * self.scale.astype(ms.float32)


def _tensors(seed: int) -> list[NamedArray]:
    rng = np.random.default_rng(seed)
    bf16 = (rng.standard_normal(4).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return [NamedArray("fc.weight", rng.standard_normal((4, 6)).astype(np.float32)),
            NamedArray("fc.bias", rng.standard_normal(4).astype(np.float32)), NamedArray("scale", bf16, "bfloat16")]


def _set(adapter: MindSporeAdapter, tensors: list[NamedArray], frames=None):
    """As the servicer sets them: decoded as the adapter takes them. The result and the tensors decoded."""
    placer, decoded = adapter.weight_placer(), []
    stream = frames if frames is not None else codec.encode_frames(tensors)

    def kept(tensors):
        for tensor in tensors:
            decoded.append(tensor)
            yield tensor

    return adapter.set_weights(kept(codec.decode(stream, place=placer.place)), strict=True, placer=placer), decoded


def test_float_weights_are_written_into_the_parameters_own_memory():
    net = Small()
    adapter = MindSporeAdapter(net)
    sent = _tensors(1)
    result, decoded = _set(adapter, sent)
    assert result.loaded == 3
    params = {p.name: p for p in net.get_parameters()}
    for tensor, back in zip(sent, decoded):
        value = params[tensor.name]
        if tensor.dtype == "bfloat16":  # no CPU view of a bfloat16 parameter: assigned as before
            assert not np.shares_memory(back.array, value.asnumpy())
            np.testing.assert_array_equal(value.view(ms.uint16).asnumpy(), tensor.array)
        else:
            assert np.shares_memory(back.array, value.asnumpy())
            np.testing.assert_array_equal(value.asnumpy(), tensor.array)
    x = np.ones((2, 6), np.float32)
    expected = (x @ sent[0].array.T + sent[1].array) * sent[2].numeric()
    np.testing.assert_allclose(net(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6)


def test_an_optimizer_steps_from_the_placed_values_and_a_second_stream_lands_too():
    net = Small()
    adapter = MindSporeAdapter(net)
    weight = net.fc.weight
    optimizer = nn.SGD([weight], learning_rate=0.5)
    _set(adapter, _tensors(1))
    optimizer((ms.Tensor(np.ones((4, 6), np.float32)),))
    np.testing.assert_allclose(weight.asnumpy(), _tensors(1)[0].array - 0.5, rtol=1e-6)
    _set(adapter, _tensors(2))
    optimizer((ms.Tensor(np.ones((4, 6), np.float32)),))
    np.testing.assert_allclose(weight.asnumpy(), _tensors(2)[0].array - 0.5, rtol=1e-6)


def test_a_stream_broken_inside_a_placed_tensor_leaves_the_net_refusing_to_compute():
    net = Small()
    adapter = MindSporeAdapter(net)
    frames = list(codec.encode_frames(_tensors(1), 32))[:2]  # fc.weight's first 64 of 96 bytes
    with pytest.raises(CodecError, match="'fc.weight': stream ended after 64 of 96"):
        _set(adapter, [], frames)
    with pytest.raises(FailedPrecondition, match="partly set by a failed SetWeights"):
        adapter.forward([NamedArray("x", np.ones((1, 6), np.float32))])


def test_a_tensor_the_net_takes_transformed_or_misshapen_is_not_placed():
    net = Small()
    adapter = MindSporeAdapter(net)
    placer = adapter.weight_placer(lambda name: None)  # nothing is set unchanged (a transposed conversion)
    header = codec.TensorHeader(name="fc.weight", dtype="float32", shape=[4, 6], nbytes=96)
    assert placer.place(header) is None
    placer = adapter.weight_placer()
    assert placer.place(codec.TensorHeader(name="fc.weight", dtype="float32", shape=[6, 4], nbytes=96)) is None
    assert placer.place(codec.TensorHeader(name="fc.weight", dtype="float16", shape=[4, 6], nbytes=48)) is None
    assert placer.place(codec.TensorHeader(name="nope", dtype="float32", shape=[4, 6], nbytes=96)) is None
    assert not placer.touched
    assert placer.place(header) is not None and placer.touched


@pytest.mark.parametrize("mode", ["graph", "jit"])
def test_a_compiled_net_computes_with_the_placed_weights(mode):
    proc = subprocess.run([sys.executable, str(REPO / "tests/fixtures/placing_graph_mode.py"), mode],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["[4.5, 4.5, 4.5]", "[8.5, 8.5, 8.5]"]
