"""locate across rank groups: which sides are split alike (rank 0 pairs with rank 0), and the check that a side's
ranks hold the same tensors of a call when they are not."""

from __future__ import annotations

import dataclasses

import numpy as np

from coordinator.rank_group import check_locate_layout, disagreeing_rank, disagreement_message
from proto.codec import NamedArray
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


def test_ranks_holding_different_tensors_of_a_call_are_found_and_named_with_the_declaration():
    whole = [NamedArray("fc1#0|out|0", np.arange(6, dtype=np.float32).reshape(2, 3))]
    assert disagreeing_rank([whole, [NamedArray("x", whole[0].array.copy())]]) is None
    nan = [NamedArray("a", np.array([np.nan, 1.0], np.float32))]
    assert disagreeing_rank([nan, [NamedArray("a", nan[0].array.copy())]]) is None  # NaN where NaN: same
    sliced = [NamedArray("fc1#0|out|0", whole[0].array[:, :2])]
    assert disagreeing_rank([whole, sliced]) == 1
    assert disagreeing_rank([whole, whole, [NamedArray("x", whole[0].array + 1)]]) == 2
    assert disagreeing_rank([whole, []]) == 1
    message = disagreement_message("pt", "fc1#0", False, 1)
    assert "pt side's 'fc1' outputs differ between rank 0 and rank 1, " in message
    assert '"activations": {"fc1": {"outputs": "shard(-1)"}}' in message
    assert "a reduction (an all-reduce, a gather) missing in the port's 'fc1'" in message
    assert "ms side's 'the root' inputs differ between rank 0 and rank 2" in disagreement_message("ms", "#0", True, 2)


def test_a_slice_is_one_dim_split_over_one_sides_number_of_ranks():
    from coordinator.locate.rank_agreement import _sliced_dim

    assert _sliced_dim((2, 8, 32), (2, 8, 64), 2, 1) == 2
    assert _sliced_dim((2, 8, 64), (2, 8, 16), 1, 4) == 2  # the other side holds the slice
    assert _sliced_dim((2, 8, 32), (2, 8, 96), 2, 1) is None  # 3x: not a world size here
    assert _sliced_dim((2, 4, 32), (2, 8, 64), 2, 1) is None  # two dims apart
    assert _sliced_dim((2, 8, 32), (2, 8, 32), 2, 1) is None and _sliced_dim((8,), (2, 8), 2, 1) is None
