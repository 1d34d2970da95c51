"""locate across rank groups: both sides must be split alike (checked before any recording)."""

from __future__ import annotations

import pytest

from coordinator.rank_group import check_locate_layout
from proto.errors import MsparityError
from proto.weights.weight_plan import WeightMapping
from proto.worker.interface import ParameterListing, ParameterSpec, WorkerDescription


def _description(world: int) -> WorkerDescription:
    return WorkerDescription("f", "1", "3.11", "cpu", "1.6", "m:build", "Net", 2, 10, world_size=world)


def _listing(fc1: tuple[str, int]) -> ParameterListing:
    return ParameterListing((ParameterSpec("fc1.weight", "float32", (4, 8), "fc1", "Linear", True, placement=fc1[0],
                                           shard_dim=fc1[1]),
                             ParameterSpec("fc1.bias", "float32", (4,), "fc1", "Linear", True)), ())


def test_equal_layouts_pass_and_unequal_ones_are_named():
    mappings = (WeightMapping("fc1.weight", "fc1.weight"), WeightMapping("fc1.bias", "fc1.bias"))
    check_locate_layout(_description(1), _description(1))
    check_locate_layout(_description(2), _description(2), mappings, _listing(("shard", 0)), _listing(("shard", 0)))
    with pytest.raises(MsparityError, match="pt runs 2, ms 1"):
        check_locate_layout(_description(2), _description(1))
    with pytest.raises(MsparityError, match=r"split 1 tensor\(s\) differently: fc1.weight shard\(0\) vs fc1.weight "
                                            r"shard\(1\)"):
        check_locate_layout(_description(2), _description(2), mappings, _listing(("shard", 0)), _listing(("shard", 1)))
    transposed = (WeightMapping("fc1.weight", "fc1.weight", "transpose"),)  # its dims swap: not compared
    check_locate_layout(_description(2), _description(2), transposed, _listing(("shard", 0)), _listing(("shard", 1)))
