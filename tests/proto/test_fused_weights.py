"""Fused <-> separate tensors in weight maps: a split feeds several MindSpore tensors, a concat joins several."""

from __future__ import annotations

import json

import numpy as np
import pytest

from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError, WeightMapError
from proto.weights.conversion import convert_tensors, converted_specs
from proto.weights.map_file import load_weight_map, weight_map_from_pair
from proto.weights.transforms import TransformError, apply_transform, ms_part, parse
from proto.weights.weight_plan import plan_against

RNG = np.random.default_rng(0)
QKV = RNG.standard_normal((24, 8)).astype(np.float32)
Q, K, V = QKV[:8], QKV[8:16], QKV[16:]


def spec(name, shape):
    return TensorSpec(name, "float32", tuple(shape))


def test_a_concat_joins_torch_parts_in_the_map_order_streaming_and_in_a_plan():
    weight_map = weight_map_from_pair([{"q": "qkv", "k": "qkv", "v": "qkv"}, dict.fromkeys("qkv", "concat(0)")])
    parts = [NamedArray("q", Q), NamedArray("k", K), NamedArray("v", V)]
    rows: list = []
    (joined,) = list(convert_tensors(weight_map, iter(parts), rows))
    assert joined.name == "qkv" and np.array_equal(joined.array, QKV) and len(rows) == 3
    assert converted_specs(weight_map, [spec(n, (8, 8)) for n in "qkv"]) == [spec("qkv", (24, 8))]

    plan = plan_against([spec(n, (8, 8)) for n in "qkv"], weight_map, [spec("qkv", (24, 8))])
    assert [m.transform for m in plan.mappings] == ["into(0,0,8)", "into(0,8,16)", "into(0,16,24)"]
    assert plan.pt_names == ["q", "k", "v"]
    (streamed,) = list(plan.convert(iter(reversed(parts))))  # parts may arrive in any order
    assert np.array_equal(streamed.array, QKV)
    assert np.array_equal(ms_part(plan.mappings[1].transform, QKV), K)  # what a comparison pairs with k


def test_a_split_cuts_one_torch_tensor_into_equal_or_given_sizes():
    weight_map = weight_map_from_pair([{"qkv": ["q", "k", "v"]}, {"qkv": "split(0)"}])
    out = list(convert_tensors(weight_map, iter([NamedArray("qkv", QKV)]), []))
    assert [t.name for t in out] == ["q", "k", "v"] and np.array_equal(out[2].array, V)
    plan = plan_against([spec("qkv", (24, 8))], weight_map, [spec(n, (8, 8)) for n in "qkv"])
    assert [m.transform for m in plan.mappings] == ["slice(0,0,8)", "slice(0,8,16)", "slice(0,16,24)"]
    assert plan.pt_names == ["qkv"]  # streamed once, feeding three

    gqa = weight_map_from_pair([{"qkv": ["q", "k", "v"]}, {"qkv": "split(0,16,4,4)"}])
    assert converted_specs(gqa, [spec("qkv", (24, 8))]) == [spec("q", (16, 8)), spec("k", (4, 8)), spec("v", (4, 8))]
    with pytest.raises(WeightMapError, match="do not cut axis 0"):
        plan_against([spec("qkv", (24, 8))], weight_map_from_pair([{"qkv": ["q", "k"]}, {"qkv": "split(0,8,8)"}]),
                     [spec("q", (8, 8)), spec("k", (8, 8))])


def test_a_transposed_part_joins_after_its_own_steps():
    weight_map = weight_map_from_pair([{"q": "qkv", "k": "qkv"}, {"q": "transpose|concat(0)", "k": "transpose|concat(0)"}])
    (joined,) = list(convert_tensors(weight_map, iter([NamedArray("q", Q.T.copy()), NamedArray("k", K.T.copy())]), []))
    assert np.array_equal(joined.array, QKV[:16])


def test_joined_shapes_and_map_files_that_cannot_work_are_refused_in_one_line(tmp_path):
    with pytest.raises(WeightMapError, match=r"shapes that differ.*joined along axis 0 make \[16, 8\]"):
        plan_against([spec("q", (8, 8)), spec("k", (8, 8))],
                     weight_map_from_pair([{"q": "qkv", "k": "qkv"}, dict.fromkeys("qk", "concat(0)")]),
                     [spec("qkv", (24, 8))])
    with pytest.raises(WeightMapError, match="join them with concat"):
        plan_against([spec("q", (8, 8)), spec("k", (8, 8))], weight_map_from_pair({"q": "qk", "k": "qk"}),
                     [spec("qk", (16, 8))])
    path = tmp_path / "map.json"
    path.write_text(json.dumps([{"qkv": ["q", "k", "v"]}, {}]))
    with pytest.raises(MsparityError, match=r"map.json: 'qkv' maps to 3 MindSpore names: give it a split"):
        load_weight_map(path)
    path.write_text(json.dumps([{"qkv": "q"}, {"qkv": "split(0)"}]))
    with pytest.raises(MsparityError, match="map it to the list of MindSpore names"):
        load_weight_map(path)
    for text in ("concat(0)|transpose", "split(0,8)", "slice(0,1)", "concat(0,1)"):
        with pytest.raises(TransformError):
            parse(text)
    with pytest.raises(TransformError, match="outside"):
        apply_transform("slice(0,20,30)", QKV)
