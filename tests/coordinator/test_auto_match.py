"""The automatic weight matcher on listings shaped like real ports: names, rules, structure, transforms."""

from __future__ import annotations

from proto.weights.auto_match import match_weights, shape_transform
from proto.weights.weight_plan import plan_from_listings
from proto.worker.interface import ModuleSpec, ParameterListing, ParameterSpec

BN = ("weight", "bias", "running_mean", "running_var")
MS_BN = ("moving_mean", "moving_variance", "gamma", "beta")  # mindcv registers its BatchNorm this way round


def pt_param(module: str, local: str, shape, module_type: str) -> ParameterSpec:
    return ParameterSpec(f"{module}.{local}", "float32", tuple(shape), module, module_type, trainable=True,
                         is_buffer=local.startswith("running"), module_rule_type=module_type)


def ms_param(module: str, local: str, shape, cell_type: str = "") -> ParameterSpec:
    return ParameterSpec(f"{module}.{local}", "float32", tuple(shape), module, cell_type, trainable=True)


def listing(params) -> ParameterListing:
    return ParameterListing(tuple(params), tuple(ModuleSpec(path, "x") for path in dict.fromkeys(q.module_path
                                                                                                   for q in params)))


def torch_block(prefix: str, width: int) -> list[ParameterSpec]:
    """A conv + BatchNorm, torch style."""
    return [pt_param(f"{prefix}.conv", "weight", (width, width, 3, 3), "Conv2d"),
            *(pt_param(f"{prefix}.bn", local, (width,), "BatchNorm2d") for local in BN)]


def mindcv_block(prefix: str, width: int) -> list[ParameterSpec]:
    return [ms_param(f"{prefix}.conv", "weight", (width, width, 3, 3)),
            *(ms_param(f"{prefix}.bn", local, (width,)) for local in MS_BN)]


def test_a_mint_port_keeps_torch_names_even_where_the_rules_would_rename():
    pt = listing([pt_param("embeddings.word_embeddings", "weight", (50, 8), "Embedding"),
                  pt_param("encoder.norm", "weight", (8,), "LayerNorm")])
    ms = listing([ms_param("embeddings.word_embeddings", "weight", (50, 8)), ms_param("encoder.norm", "weight", (8,))])
    result = match_weights(pt, ms)
    assert [(p.pt_name, p.ms_name, p.how) for p in result.pairings] == [
        ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight", "name"),
        ("encoder.norm.weight", "encoder.norm.weight", "name")]
    assert plan_from_listings(pt, ms).pt_names == [p.name for p in pt.parameters]


def test_renamed_modules_and_reordered_batchnorm_pair_by_structure():
    pt = listing([*torch_block("layer1.0", 4), *torch_block("layer1.1", 4), *torch_block("layer2.0", 8),
                  pt_param("fc", "weight", (3, 8), "Linear"), pt_param("fc", "bias", (3,), "Linear")])
    ms = listing([*mindcv_block("layers.0.0", 4), *mindcv_block("layers.0.1", 4), *mindcv_block("layers.1.0", 8),
                  ms_param("classifier", "weight", (3, 8)), ms_param("classifier", "bias", (3,))])
    result = match_weights(pt, ms)
    pairs = {p.pt_name: p.ms_name for p in result.pairings}
    assert not result.unmatched_pt and not result.unmatched_ms
    assert pairs["layer1.1.bn.weight"] == "layers.0.1.bn.gamma" and pairs["layer2.0.bn.running_var"] == \
        "layers.1.0.bn.moving_variance"
    assert pairs["fc.bias"] == "classifier.bias" and result.counts() == {"structure": 17}
    assert ("fc", "classifier", 2) in result.renames and "module renames seen" in result.summary()
    assert len(plan_from_listings(pt, ms).mappings) == 17


def test_a_1x1_conv_ported_as_a_dense_is_squeezed_and_a_conv1d_gains_an_axis():
    assert shape_transform((16, 8, 1, 1), (16, 8)) == "squeeze(2,3)"
    assert shape_transform((16, 8), (16, 8, 1, 1)) == "unsqueeze(2,3)"
    assert shape_transform((4, 2, 3), (4, 2, 1, 3)) == "expand_dims_axis2"
    assert shape_transform((4, 2), (2, 4)) is None and shape_transform((4, 2), (2, 4), allow_transpose=True)
    pt = listing([pt_param("se.fc1", "weight", (16, 8, 1, 1), "Conv2d"), pt_param("se.fc1", "bias", (16,), "Conv2d")])
    ms = listing([ms_param("se.dense", "weight", (16, 8)), ms_param("se.dense", "bias", (16,))])
    weight_map = match_weights(pt, ms).weight_map()
    assert weight_map.name_map == {"se.fc1.weight": "se.dense.weight", "se.fc1.bias": "se.dense.bias"}
    assert weight_map.value_map == {"se.fc1.weight": "squeeze(2,3)"}
    assert plan_from_listings(pt, ms).mappings[0].transform == "squeeze(2,3)"


def test_a_bias_the_port_lacks_stays_unpaired_and_the_plan_leaves_it_out():
    pt = listing([pt_param("fc", "weight", (3, 8), "Linear"), pt_param("fc", "bias", (3,), "Linear"),
                  pt_param("head", "weight", (2, 3), "Linear")])
    ms = listing([ms_param("fc", "weight", (3, 8)), ms_param("head", "weight", (2, 3))])
    result = match_weights(pt, ms)
    assert result.unmatched_pt == ("fc.bias",) and not result.unmatched_ms
    assert plan_from_listings(pt, ms).missing_bias == ("fc.bias",)


def test_modules_that_do_not_fit_are_left_unpaired_not_forced():
    pt = listing([pt_param("a", "weight", (3, 8), "Linear"), pt_param("b", "weight", (5, 5), "Linear")])
    ms = listing([ms_param("x", "weight", (5, 5)), ms_param("y", "weight", (4, 4))])
    result = match_weights(pt, ms)
    assert [(p.pt_name, p.ms_name) for p in result.pairings] == [("b.weight", "x.weight")]
    assert result.unmatched_pt == ("a.weight",) and result.unmatched_ms == ("y.weight",)
    assert "1 torch tensor(s) unpaired: a.weight" in result.summary()


def test_separate_query_key_value_join_into_a_fused_qkv_and_norms_align_among_themselves():
    """HuggingFace's ViT layer (q, k, v, out, then its norms) against mindcv's block (norm1, qkv, proj, norm2)."""
    def hf_layer(i):
        return [*(pt_param(f"layer.{i}.{n}", local, (8, 8) if local == "weight" else (8,), "Linear")
                  for n in ("query", "key", "value", "out") for local in ("weight", "bias")),
                *(pt_param(f"layer.{i}.{n}", local, (8,), "LayerNorm") for n in ("ln_before", "ln_after")
                  for local in ("weight", "bias"))]

    def mindcv_block(i):
        return [*(ms_param(f"blocks.{i}.norm1", local, (8,), "LayerNorm") for local in ("gamma", "beta")),
                ms_param(f"blocks.{i}.qkv", "weight", (24, 8), "Dense"), ms_param(f"blocks.{i}.qkv", "bias", (24,), "Dense"),
                ms_param(f"blocks.{i}.proj", "weight", (8, 8), "Dense"), ms_param(f"blocks.{i}.proj", "bias", (8,), "Dense"),
                *(ms_param(f"blocks.{i}.norm2", local, (8,), "LayerNorm") for local in ("gamma", "beta"))]

    pt, ms = listing(hf_layer(0) + hf_layer(1)), listing(mindcv_block(0) + mindcv_block(1))
    result = match_weights(pt, ms)
    assert not result.unmatched_pt and not result.unmatched_ms
    weight_map = result.weight_map()
    assert [k for k, v in weight_map.name_map.items() if v == "blocks.1.qkv.weight"] == [
        "layer.1.query.weight", "layer.1.key.weight", "layer.1.value.weight"]  # joined in torch's order
    assert weight_map.value_map["layer.0.key.bias"] == "concat(0)"
    assert weight_map.name_map["layer.1.ln_before.weight"] == "blocks.1.norm1.gamma"  # not shifted by a block
    plan = plan_from_listings(pt, ms)
    assert [m.transform for m in plan.mappings if m.ms_name == "blocks.0.qkv.weight"] == [
        "into(0,0,8)", "into(0,8,16)", "into(0,16,24)"]

    reverse = match_weights(ms, pt).weight_map()  # a fused torch qkv split into separate MindSpore tensors
    assert reverse.name_map["blocks.0.qkv.weight"] == ["layer.0.query.weight", "layer.0.key.weight", "layer.0.value.weight"]
    assert reverse.value_map["blocks.0.qkv.weight"] == "split(0)"
