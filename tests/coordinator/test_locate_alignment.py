"""coordinator/locate/alignment.py: pairing torch module calls with MindSpore cell calls."""

from __future__ import annotations

import pytest

from coordinator.locate.alignment import align_calls
from proto.worker.module_records import ModuleCall
from tests.coordinator.locate_helpers import Trace, vit_alignment


@pytest.fixture(scope="module")
def vit():
    return vit_alignment()


def test_alignment_pairs_every_torch_module_of_the_vit(vit):
    pt, ms, alignment = vit
    pairs = {p.pt.key: (p.ms.key, p.how) for p in alignment.pairs}
    assert len(pairs) == len(pt) and not alignment.unmatched_pt
    assert pairs["#0"] == ("#0", "params")
    assert pairs["blocks.0.mlp.fc1#0"] == ("blocks.0.ffn.fc1#0", "params")
    assert pairs["blocks.1.norm2#0"] == ("blocks.1.norm2#0", "params")
    assert pairs["blocks.0#0"] == ("blocks.0#0", "path")
    assert pairs["blocks.1.mlp#0"] == ("blocks.1.ffn#0", "order")
    assert pairs["blocks.0.mlp.act#0"] == ("blocks.0.ffn.act#0", "order")
    # the module called twice pairs call k with call k
    assert pairs["pos_drop#0"] == ("drop#0", "order") and pairs["pos_drop#1"] == ("drop#1", "order")
    assert [p.pt.end for p in alignment.pairs] == sorted(p.pt.end for p in alignment.pairs)
    extra = {u.call.key: u.reason for u in alignment.unmatched_ms}
    assert set(extra) == {"blocks.0.attn.softmax#0", "blocks.1.attn.softmax#0"}
    assert "no torch call" in extra["blocks.0.attn.softmax#0"]


def test_alignment_reports_extra_calls_and_incompatible_types():
    t = Trace()
    t.leaf("fc", "Linear", ("weight",))
    t.leaf("fc", "Linear", ("weight",))
    t.leaf("act", "ReLU")
    pt = t.calls
    m = Trace()
    m.leaf("fc", "Dense", ("weight",))
    m.leaf("tanh", "Tanh")
    m.leaf("sig", "Sigmoid")
    alignment = align_calls(pt, m.calls, {"fc.weight": "fc.weight"})
    assert [(p.pt.key, p.ms.key) for p in alignment.pairs] == [("fc#0", "fc#0")]
    reasons = {u.call.key: u.reason for u in alignment.unmatched_pt}
    assert "called 2 time(s) in torch, 1 in MindSpore" in reasons["fc#1"]
    assert "act#0" in reasons and [u.call.key for u in alignment.unmatched_ms] == ["tanh#0", "sig#0"]
    # One leaf left on each side between the same paired calls, same shapes: a swapped layer, paired.
    m = Trace()
    m.leaf("fc", "Dense", ("weight",))
    m.leaf("tanh", "Tanh")
    alignment = align_calls(pt, m.calls, {"fc.weight": "fc.weight"})
    assert ("act#0", "tanh#0", "order, other type") in [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs]


def test_same_path_other_type_pairs_only_when_calls_and_shapes_agree():
    t = Trace()
    t.leaf("act", "ReLU")
    t.leaf("pool", "MaxPool2d", out=(2, 4))
    m = Trace()
    m.leaf("act", "LeakyReLU")
    m.leaf("pool", "AvgPool2d", out=(2, 5))
    alignment = align_calls(t.calls, m.calls, {})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("act#0", "act#0", "path, other type")]
    assert [u.call.key for u in alignment.unmatched_pt] == ["pool#0"]


def test_roots_pair_whatever_their_classes():
    t, m = Trace(), Trace()
    with t.call("", "VisionTransformer"):
        t.leaf("act", "ReLU")
    with m.call("", "ViTPort"):
        m.leaf("act", "ReLU")
    alignment = align_calls(t.calls, m.calls, {})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("act#0", "act#0", "path"), ("#0", "#0", "root")]


def test_parameters_in_a_child_cell_pair_with_the_compatible_ancestor():
    # MindSpore BatchNorm3d keeps its parameters in a nested BatchNorm2d `bn2d`
    t = Trace()
    t.leaf("bn", "BatchNorm3d", ("weight", "bias"), out=(2, 4, 3, 3, 3))
    m = Trace()
    with m.call("bn", "BatchNorm3d", out=(2, 4, 3, 3, 3)):
        m.leaf("bn.bn2d", "BatchNorm2d", ("gamma", "beta"), out=(2, 4, 9, 3))
    alignment = align_calls(t.calls, m.calls, {"bn.weight": "bn.bn2d.gamma", "bn.bias": "bn.bn2d.beta"})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("bn#0", "bn#0", "params")]
    assert [u.call.key for u in alignment.unmatched_ms] == ["bn.bn2d#0"]


def test_a_path_pairing_must_agree_with_the_parameter_pairings():
    """mindcv's features.3 is not torchvision's features.3 when their convs pair elsewhere."""
    t = Trace()
    with t.call("features.3", "InvertedResidual", inp=(2, 8), out=(2, 8)):
        t.leaf("features.3.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 8))
    with t.call("features.4", "InvertedResidual", inp=(2, 8), out=(2, 16)):
        t.leaf("features.4.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 16))
    m = Trace()
    with m.call("features.3", "InvertedResidual", inp=(2, 4), out=(2, 8)):
        m.leaf("features.3.conv", "Conv2d", ("weight",), inp=(2, 4), out=(2, 8))
    with m.call("features.5", "InvertedResidual", inp=(2, 8), out=(2, 8)):
        m.leaf("features.5.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 8))
    with m.call("features.6", "InvertedResidual", inp=(2, 8), out=(2, 16)):
        m.leaf("features.6.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 16))
    name_map = {"features.3.conv.weight": "features.5.conv.weight", "features.4.conv.weight": "features.6.conv.weight"}
    alignment = align_calls(t.calls, m.calls, name_map)
    pairs = {p.pt.path: p.ms.path for p in alignment.pairs}
    assert pairs == {"features.3.conv": "features.5.conv", "features.4.conv": "features.6.conv",
                     "features.3": "features.5", "features.4": "features.6"}


def _padded_pool_port(out: int) -> list[ModuleCall]:
    m = Trace()
    with m.call("pool", "SequentialCell", inp=(2, 4, 8, 8), out=(2, 4, out, out)):
        m.leaf("pool.0", "Pad", inp=(2, 4, 8, 8), out=(2, 4, 10, 10))
        m.leaf("pool.1", "MaxPool2d", inp=(2, 4, 10, 10), out=(2, 4, out, out))
    return m.calls


@pytest.mark.parametrize("ms_out", [4, 8], ids=["same-shape", "stride-lost"])
def test_a_layer_ported_inside_a_container_pairs_with_the_container(ms_out):
    """torch MaxPool2d(padding=1) ~ MindSpore SequentialCell(Pad, MaxPool2d) at the same path; a port whose
    pool lost its stride still pairs (same inputs), so its output shape is what gets blamed."""
    t = Trace()
    t.leaf("pool", "MaxPool2d", inp=(2, 4, 8, 8), out=(2, 4, 4, 4))
    alignment = align_calls(t.calls, _padded_pool_port(ms_out), {})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("pool#0", "pool#0", "path, container")]
    assert [u.call.path for u in alignment.unmatched_ms] == ["pool.0", "pool.1"]
