"""The hint for an output holding the right values in the wrong places (slices joined in the wrong order)."""

from __future__ import annotations

import numpy as np

from coordinator.locate.permutation import moved_values, moved_values_hint
from proto.codec import NamedArray


def test_slices_swapped_along_the_last_dim_are_found_and_real_differences_are_not():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 8, 32)).astype(np.float32)
    swapped = np.concatenate([logits[..., 16:], logits[..., :16]], axis=-1)
    assert moved_values(logits, swapped) == [2]
    assert moved_values(logits, logits.transpose(1, 0, 2).reshape(2, 8, 32)) == []  # moved, along no one dim
    assert moved_values(logits, logits + 1e-7) is None  # noise: not a difference
    assert moved_values(logits, logits * 1.1) is None  # other values
    assert moved_values(logits, swapped[..., :31].copy()) is None  # other shapes
    hint = moved_values_hint([NamedArray("o", logits)], [NamedArray("o", swapped)], "head")
    assert hint.startswith("MindSpore's head output holds torch's values in other places along dim 2 of [2, 8, 32]")
    assert moved_values_hint([NamedArray("o", logits)], [NamedArray("o", logits * 2)], "head") is None
