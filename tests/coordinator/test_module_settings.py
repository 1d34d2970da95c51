"""Hints from the two modules' real settings: both values named, equal settings rule their hints out."""

from __future__ import annotations

from coordinator.locate.layer_hints import hint_for
from coordinator.locate.module_settings import compared_settings


def test_a_differing_epsilon_names_both_values_and_the_fix():
    differ, equal = compared_settings({"eps": "1e-06", "normalized_shape": "(32,)"}, {"epsilon": "1e-07"})
    assert differ == ["epsilon: torch eps=1e-06, MindSpore epsilon=1e-07; pass epsilon=1e-06"] and not equal


def test_equal_settings_are_not_differences_and_rule_out_the_default_hint():
    differ, equal = compared_settings({"eps": "1e-06"}, {"epsilon": "1e-06"})
    assert not differ and equal == {"epsilon"}
    assert "epsilon" in hint_for("LayerNorm", "LayerNorm")  # without evidence: the framework defaults
    assert hint_for("LayerNorm", "LayerNorm", {"settings_equal": equal}) is None  # never the wrong advice


def test_gelu_strides_and_padding_spell_alike_across_frameworks():
    assert compared_settings({"approximate": "'none'"}, {"approximate": "False"}) == ([], {"GELU approximation"})
    differ, _ = compared_settings({"approximate": "'none'"}, {"approximate": "'tanh'"})
    assert differ == ["GELU approximation: torch approximate='none', MindSpore approximate='tanh'; pass approximate=False"]
    assert compared_settings({"stride": "(2, 2)"}, {"stride": "2"})[1] == {"stride"}
    differ, equal = compared_settings({"padding": "1", "stride": "2"}, {"pad_mode": "'same'", "padding": "0", "stride": "2"})
    assert any("pad_mode='same' pads TF-style" in d for d in differ) and "padding" not in equal
    assert compared_settings({"padding": "1"}, {"pad_mode": "'pad'", "padding": "1"}) == ([], {"padding"})


def test_an_attention_scale_is_read_from_either_spelling_and_a_0d_tensor():
    import numpy as np

    from proto.worker.call_recorder import module_attributes

    class MindcvAttention:  # mindcv keeps Tensor(head_dim ** -0.5); HuggingFace names it ``scaling``
        scale = np.array(8 ** -0.5, np.float32)

    ms_attrs = dict(module_attributes(MindcvAttention()))
    assert abs(float(ms_attrs["scale"]) - 8 ** -0.5) < 1e-7
    differ, _ = compared_settings({"scaling": "0.25"}, ms_attrs)
    assert differ and differ[0].startswith("attention scale: torch scaling=0.25, MindSpore scale=0.3535")
    assert compared_settings({"scaling": repr(8 ** -0.5)}, ms_attrs) == ([], {"attention scale"})  # float32 rounding
