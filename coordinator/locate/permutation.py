"""A blamed module whose output holds the right values in the wrong places: slices joined in the wrong order
(a gather or a concat), or a transpose, reshape or permute that differs. Sorted, such outputs agree."""

from __future__ import annotations

import numpy as np

from coordinator.locate.isolation import l2
from proto.codec import NamedArray

AGREE = 1e-4  # relative L2 of the sorted values, far under a real difference, far over float32 noise sums
DIFFER = 1e-2  # relative L2 of the outputs as they are: a clear difference, not noise


def moved_values(ref: np.ndarray, cand: np.ndarray) -> list[int] | None:
    """The dims along which sorting both makes them agree when they differ as they are; None when the values
    differ themselves (or the two cannot be told apart this way)."""
    if ref.shape != cand.shape or ref.size < 2 or ref.dtype.kind != "f" or cand.dtype.kind != "f":
        return None
    ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
    if not (np.isfinite(ref64).all() and np.isfinite(cand64).all()) or l2(ref64, cand64) < DIFFER:
        return None
    if l2(np.sort(ref64, axis=None), np.sort(cand64, axis=None)) > AGREE:
        return None
    return [d for d in range(ref64.ndim) if ref64.shape[d] > 1 and
            l2(np.sort(ref64, axis=d), np.sort(cand64, axis=d)) <= AGREE]


def moved_values_hint(pt_outputs: list[NamedArray], ms_outputs: list[NamedArray], ms_path: str) -> str | None:
    """The hint for a blamed call whose MindSpore output is torch's values moved (the first such output)."""
    for pt, ms in zip(pt_outputs, ms_outputs):
        dims = moved_values(pt.array, ms.array)
        if dims is None:
            continue
        where = (f" along dim {', '.join(map(str, dims))} of {list(ms.shape)}" if dims else
                 f" across its shape {list(ms.shape)}")
        return (f"MindSpore's {ms_path or 'net'} output holds torch's values in other places{where} (sorted, they "
                "agree): slices joined in the wrong order (a gather or concat across ranks or branches), or a "
                "transpose, reshape or permute that differs")
    return None
