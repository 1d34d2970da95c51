"""coordinator/locate/layer_hints.py: the silent defaults named for a blamed layer type, and the evidence read off."""

from __future__ import annotations

import pytest

from coordinator.locate import layer_hints
from tests.coordinator.locate_helpers import Trace

DIFFERENCES = [h for h in layer_hints.HINTS if h.fix is not None]


@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda h: f"{h.label}:{h.fix[:20]}")
def test_every_difference_row_is_offered_for_its_types(row):
    pt, ms = sorted(row.pt_types)[0], sorted(row.ms_types)[0]
    line = layer_hints.hint_for(pt, ms, dict(row.when))
    assert line is not None and "\n" not in line
    assert row.cause in line and row.fix in line


@pytest.mark.parametrize("pt, ms", [("ReLU6", "ReLU6"), ("ELU", "ELU"), ("Hardswish", "HSwish"), ("Linear", "Dense")])
def test_agreeing_rows_say_the_defaults_agree(pt, ms):
    assert "agree" in layer_hints.hint_for(pt, ms, {"ms_lacks_bias": False})


def test_hints_carry_layer_facts_numbers_and_follow_the_evidence():
    assert layer_hints.hint_for("LayerNorm", "LayerNorm", None).startswith(
        "LayerNorm differs: MindSpore's default epsilon is 1e-7, torch's eps 1e-5")
    assert "epsilon=1e-5" in layer_hints.hint_for("LayerNorm", "LayerNorm", None)
    assert "approximate=False" in layer_hints.hint_for("GELU", "GELU", None)
    assert "alpha=0.01" in layer_hints.hint_for("LeakyReLU", "LeakyReLU", None)
    assert "keep_prob" in layer_hints.hint_for("Dropout", "Dropout", {"training": True})
    assert "keep_prob" not in layer_hints.hint_for("Dropout", "Dropout", {"training": False})
    assert "momentum=1 - torch momentum" in layer_hints.hint_for("BatchNorm2d", "BatchNorm2d", {"training": True})
    wider = layer_hints.hint_for("Conv2d", "Conv2d", {"shape_differs": True, "ms_lacks_bias": False})
    assert "pad_mode='pad', padding=p" in wider and "has_bias" not in wider and "TF-style" not in wider
    same_shape = layer_hints.hint_for("Conv2d", "Conv2d", {"shape_differs": False, "ms_lacks_bias": True})
    assert same_shape.index("has_bias=True") < same_shape.index("TF-style")
    assert "stride=kernel_size" in layer_hints.hint_for("MaxPool2d", "MaxPool2d", {"shape_differs": True})
    assert "axis" in layer_hints.hint_for("Softmax", "Softmax", None)
    assert layer_hints.hint_for("Attention", "Attention", None) is None


def test_evidence_read_off_two_calls():
    t = Trace()
    t.leaf("conv", "Conv2d", ("weight", "bias"), out=(1, 4, 6, 6))
    m = Trace()
    m.leaf("conv", "Conv2d", ("weight",), out=(1, 4, 8, 8))
    evidence = layer_hints.evidence_from_calls(t.calls[0], m.calls[0], training=False)
    assert evidence == {"shape_differs": True, "ms_lacks_bias": True, "size_factor": False, "training": False}
    assert "has_bias=True" in layer_hints.hint_for("Conv2d", "Conv2d", evidence)
    m = Trace()
    m.leaf("conv", "Conv2d", ("weight", "bias"), out=(1, 4, 12, 12))  # stride 1 where torch strides 2
    evidence = layer_hints.evidence_from_calls(t.calls[0], m.calls[0], training=False)
    assert evidence["size_factor"] and layer_hints.hint_for("Conv2d", "Conv2d", evidence).startswith(
        "Conv differs: the output size differs by a whole factor: the stride differs")
