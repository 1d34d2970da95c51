"""Weight plans from listings: layer rules, transforms, and every problem listed in one error."""

from __future__ import annotations

import numpy as np
import pytest

from proto.codec import NamedArray
from proto.errors import WeightMapError
from proto.weights.weight_plan import plan_against, plan_from_listings, rules_weight_map
from proto.worker.interface import ModuleSpec, ParameterListing, ParameterSpec


def p(name, shape, module_path, module_type, dtype="float32"):
    return ParameterSpec(name, dtype, tuple(shape), module_path, module_type, trainable=True)


PT = ParameterListing(
    parameters=(
        p("bn.weight", (4,), "bn", "BatchNorm2d"),
        p("bn.bias", (4,), "bn", "BatchNorm2d"),
        p("bn.running_mean", (4,), "bn", "BatchNorm2d"),
        p("bn.running_var", (4,), "bn", "BatchNorm2d"),
        p("bn.num_batches_tracked", (), "bn", "BatchNorm2d", "int64"),
        p("conv.weight", (2, 1, 3), "conv", "Conv1d"),
        p("emb.weight", (10, 4), "emb", "Embedding"),
        p("enc.linear1.weight", (8, 4), "enc.linear1", "Linear"),
        p("enc.norm1.weight", (4,), "enc.norm1", "LayerNorm"),
        p("act.weight", (1,), "act", "PReLU"),
        p("bn3.weight", (4,), "bn3", "BatchNorm3d"),
    ),
    modules=(ModuleSpec("", "Net"), ModuleSpec("enc", "TransformerEncoderLayer")),
)
MS_NAMES = {
    "bn.gamma": (4,), "bn.beta": (4,), "bn.moving_mean": (4,), "bn.moving_variance": (4,),
    "conv.weight": (2, 1, 1, 3), "emb.embedding_table": (10, 4), "enc.dense1.weight": (8, 4),
    "enc.norm1.gamma": (4,), "act.w": (1,), "bn3.bn2d.gamma": (4,),
}


def ms_listing(names=MS_NAMES):
    return ParameterListing(tuple(p(n, s, "", "") for n, s in names.items()), ())


def test_layer_rules_map_every_entry():
    plan = plan_from_listings(PT, ms_listing())
    mapped = {m.pt_name: m.ms_name for m in plan.mappings}
    assert mapped["bn.running_var"] == "bn.moving_variance"
    assert mapped["enc.linear1.weight"] == "enc.dense1.weight"
    assert mapped["bn3.weight"] == "bn3.bn2d.gamma"
    assert plan.dropped == ("bn.num_batches_tracked",)
    conv = next(m for m in plan.mappings if m.pt_name == "conv.weight")
    assert conv.transform == "expand_dims_axis2"
    (converted,) = plan.convert([NamedArray("conv.weight", np.arange(6, dtype=np.float32).reshape(2, 1, 3))])
    assert converted.name == "conv.weight" and converted.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(converted.array[:, :, 0, :], np.arange(6).reshape(2, 1, 3))


def test_every_problem_is_listed_in_one_error():
    names = dict(MS_NAMES)
    names["emb.embedding_table"] = (10, 5)  # shape mismatch
    del names["act.w"]  # pt entry with no target
    names["extra.weight"] = (3,)  # ms entry nothing feeds
    with pytest.raises(WeightMapError) as info:
        plan_from_listings(PT, ms_listing(names))
    message = str(info.value)
    assert "shapes that differ (1): pt 'emb.weight' [10, 4] -> ms 'emb.embedding_table' needs [10, 5]" in message
    assert "torch entries mapped to names the ms net lacks (1): 'act.weight' -> 'act.w'" in message
    assert "ms parameters no pt entry maps to (1): extra.weight" in message and "\n" not in message
    assert "2 torch tensor(s) unpaired: emb.weight, act.weight" in message  # what the matcher could not pair


def test_hundreds_of_problems_stay_one_readable_line():
    pt = ParameterListing(tuple(p(f"blocks.{i}.fc.weight", (4, 4), f"blocks.{i}.fc", "Linear") for i in range(300)), ())
    ms = ms_listing({f"cell_list.{i}.dense.weight": (4, 5) for i in range(300)})
    with pytest.raises(WeightMapError) as info:
        plan_from_listings(pt, ms)
    message = str(info.value)
    assert len(message) < 1500 and "\n" not in message
    assert "torch entries mapped to names the ms net lacks (300): 'blocks.0.fc.weight' -> 'blocks.0.fc.weight'" in message
    assert "and 295 more" in message and "300 torch tensor(s) unpaired" in message


def test_a_bias_only_one_side_has_is_left_out_one_way_and_named_the_other():
    pt = ParameterListing(PT.parameters + (p("fc.weight", (3, 4), "fc", "Linear"), p("fc.bias", (3,), "fc", "Linear")),
                          PT.modules)
    plan = plan_from_listings(pt, ms_listing({**MS_NAMES, "fc.weight": (3, 4)}))
    assert plan.missing_bias == ("fc.bias",) and "fc.bias" not in plan.pt_names
    with pytest.raises(WeightMapError, match=r"a bias their torch layer lacks \(1\): conv.bias \(pass has_bias=False"):
        plan_from_listings(PT, ms_listing({**MS_NAMES, "conv.bias": (2,)}))
    with pytest.raises(WeightMapError, match="fc.bias"):  # a checkpoint conversion stays strict
        plan_against(list(pt.parameters), rules_weight_map(pt), list(ms_listing({**MS_NAMES, "fc.weight": (3, 4)}).parameters))


def test_dtype_mismatch_is_a_problem():
    names = ParameterListing(tuple(p(n, s, "", "", "float16" if n == "bn.gamma" else "float32")
                                   for n, s in MS_NAMES.items()), ())
    with pytest.raises(WeightMapError, match="'bn.weight' is float32, ms 'bn.gamma' is float16"):
        plan_from_listings(PT, names)


def test_transforms_and_shape_transforms_agree():
    from proto.weights.transforms import apply_transform, transform_shape

    array = np.zeros((2, 3, 1, 5))
    for text in ("identity", "expand_dims_axis2", "squeeze(2)", "transpose(3,2,1,0)", "reshape(6,5)",
                 "squeeze(2)|transpose(1,0,2)|unsqueeze(0)"):
        assert apply_transform(text, array).shape == transform_shape(text, array.shape), text
