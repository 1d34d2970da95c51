"""locate across rank groups: which sides are split alike (rank 0 pairs with rank 0), and the check that a side's
ranks hold the same tensors of a call when they are not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coordinator.rank_group import check_locate_layout, check_ranks_agree
from proto.codec import NamedArray
from proto.errors import MsparityError
from proto.weights.weight_plan import WeightMapping
from proto.worker.interface import ParameterListing, ParameterSpec, WorkerDescription


def _description(world: int) -> WorkerDescription:
    return WorkerDescription("f", "1", "3.11", "cpu", "1.6", "m:build", "Net", 2, 10, world_size=world)


def _listing(fc1: tuple[str, int]) -> ParameterListing:
    return ParameterListing((ParameterSpec("fc1.weight", "float32", (4, 8), "fc1", "Linear", True, placement=fc1[0],
                                           shard_dim=fc1[1]),
                             ParameterSpec("fc1.bias", "float32", (4,), "fc1", "Linear", True)), ())


def test_sides_are_alike_with_as_many_ranks_and_the_same_splits():
    mappings = (WeightMapping("fc1.weight", "fc1.weight"), WeightMapping("fc1.bias", "fc1.bias"))
    assert check_locate_layout(_description(1), _description(1))
    assert check_locate_layout(_description(2), _description(2), mappings, _listing(("shard", 0)),
                               _listing(("shard", 0)))
    assert not check_locate_layout(_description(2), _description(1))
    assert not check_locate_layout(_description(2), _description(2), mappings, _listing(("shard", 0)),
                                   _listing(("shard", 1)))
    declared = dataclasses.replace(_description(2), activation_paths=("fc1",))  # made whole: pairs with whole only
    assert not check_locate_layout(declared, _description(2), mappings, _listing(("shard", 0)), _listing(("shard", 0)))
    assert not check_locate_layout(declared, declared, mappings, _listing(("shard", 0)), _listing(("shard", 0)))
    transposed = (WeightMapping("fc1.weight", "fc1.weight", "transpose"),)  # its dims swap: not compared
    assert check_locate_layout(_description(2), _description(2), transposed, _listing(("shard", 0)),
                               _listing(("shard", 1)))


def test_ranks_holding_different_tensors_of_a_call_are_named_with_the_declaration():
    whole = [NamedArray("fc1#0|out|0", np.arange(6, dtype=np.float32).reshape(2, 3))]
    check_ranks_agree("pt", "fc1#0", False, [whole, [NamedArray("x", whole[0].array.copy())]])
    nan = [NamedArray("a", np.array([np.nan, 1.0], np.float32))]
    check_ranks_agree("ms", "act#0", True, [nan, [NamedArray("a", nan[0].array.copy())]])  # NaN where NaN: same
    sliced = [NamedArray("fc1#0|out|0", whole[0].array[:, :2])]
    with pytest.raises(MsparityError, match=r"pt side's 'fc1' outputs differ between rank 0 and rank 1, .*"
                                            r'"activations": \{"fc1": \{"outputs": "shard\(-1\)"\}\}.*'
                                            r"a reduction \(an all-reduce, a gather\) missing in the port's 'fc1'"):
        check_ranks_agree("pt", "fc1#0", False, [whole, sliced])
    with pytest.raises(MsparityError, match="ms side's 'the root' inputs differ between rank 0 and rank 2"):
        check_ranks_agree("ms", "#0", True, [whole, whole, [NamedArray("x", whole[0].array + 1)]])


def test_a_slice_is_one_dim_split_over_one_sides_number_of_ranks():
    from coordinator.locate.rank_agreement import _sliced_dim

    assert _sliced_dim((2, 8, 32), (2, 8, 64), 2, 1) == 2
    assert _sliced_dim((2, 8, 64), (2, 8, 16), 1, 4) == 2  # the other side holds the slice
    assert _sliced_dim((2, 8, 32), (2, 8, 96), 2, 1) is None  # 3x: not a world size here
    assert _sliced_dim((2, 4, 32), (2, 8, 64), 2, 1) is None  # two dims apart
    assert _sliced_dim((2, 8, 32), (2, 8, 32), 2, 1) is None and _sliced_dim((8,), (2, 8), 2, 1) is None
