"""Kink flips: float32 rounding that puts one activation input on the other side of a ReLU/ReLU6/max kink.

Its gradient element passes on one side and not on the other, and every gradient upstream in backward
moves by it (torchvision's mobilenet_v2 against mindcv's at seed 0: one input of the last ReLU6 is
-1.9e-5 in float64, +1.05e-5 in MindSpore's float32; torch's own float32 error there is of that size;
gradients 100-1568x torch's noise on a correct port). Such a step is explained, with a warning to
confirm with another seed, never silently passed; a difference spread over a tensor is never explained.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from coordinator import metrics
from proto.codec import NamedArray

if TYPE_CHECKING:
    from coordinator.train.train_step import TensorRow

ISOLATED_SHARE = 0.99  # of MindSpore's squared difference from float64 ...
ISOLATED_MOST = 0.001  # ... held by at most this share of the elements (and at least 2 allowed)
DOWNSTREAM_COSINE, DOWNSTREAM_ERROR = 0.999, 0.05  # what an upstream gradient moved by one flipped element looks like


def isolated_difference(reference: NamedArray | None, pt: NamedArray, ms: NamedArray) -> str:
    """Where a gradient's difference from torch's float64 step sits when a few elements hold 99% of it and the
    rest is within float32 noise: the mark of one ReLU/ReLU6/max input that float32 rounding put on the other
    side of its kink (its gradient passes on one side, not the other). "" otherwise."""
    if reference is None or reference.shape != ms.shape or reference.array.dtype.kind != "f":
        return ""
    ref, cand, own = (np.asarray(t.numeric(), np.float64).ravel() for t in (reference, ms, pt))
    squared = np.nan_to_num((cand - ref) ** 2, nan=np.inf)
    total = float(squared.sum())
    if not np.isfinite(total) or total == 0.0:
        return ""
    order = np.argsort(squared)[::-1]
    count = int(np.searchsorted(np.cumsum(squared[order]), ISOLATED_SHARE * total) + 1)
    if count > max(2, int(ISOLATED_MOST * ref.size)) or count >= ref.size:
        return ""
    keep = np.ones(ref.size, bool)
    keep[order[:count]] = False
    rest = metrics.noise_ratio(metrics.rel_l2(ref[keep], cand[keep]), metrics.rel_l2(ref[keep], own[keep]))
    if not rest < metrics.NOISE_RATIO_LIMIT:
        return ""
    where = list(map(int, np.unravel_index(int(order[0]), reference.shape))) if reference.shape else []
    more = f" and {count - 1} more" if count > 1 else ""
    return f"{where}{more} (without it {rest:.2g}x the noise)"


def explain_kink_flip(rows: list[TensorRow]) -> tuple[list[TensorRow], tuple[str, ...]]:
    """One flipped kink explains the gradients it moves: the failing gradient nearest the loss whose difference
    is isolated, the failing gradients upstream of it (earlier in the parameter order) that stay close, and the
    updated tensors of those parameters. Explained, not hidden: the note asks for another seed."""
    grads = [i for i, r in enumerate(rows) if r.kind == "grad" and not r.passed]
    flips = [i for i in grads if rows[i].isolated]
    if not flips:
        return rows, ()
    at = flips[-1]
    flip = rows[at]
    rows = list(rows)
    rows[at] = dataclasses.replace(flip, explained=f"one element {flip.isolated} holds the difference: a kink flip")
    moved = 0
    for i in grads:
        c = rows[i].comparison
        if i < at and c is not None and c.cosine_similarity >= DOWNSTREAM_COSINE and rows[i].error <= DOWNSTREAM_ERROR:
            rows[i] = dataclasses.replace(rows[i], explained=f"moved through backward by the kink flip in {flip.pt_name}")
            moved += 1
    explained = {r.pt_name for r in rows if r.kind == "grad" and r.explained}
    for i, r in enumerate(rows):
        if r.kind != "grad" and not r.passed and r.pt_name in explained:
            rows[i] = dataclasses.replace(r, explained="follows its gradient (the kink flip)")
    note = (f"the gradient of {flip.pt_name} differs from torch's float64 step in one element {flip.isolated}"
            f"{f', and {moved} gradient(s) upstream by it' if moved else ''}: an activation input that float32 "
            "rounding put on the other side of a ReLU/ReLU6/max kink (torch's own float32 error there is of the same "
            "size); confirm with another --seed: a flip moves with the input, a porting bug does not")
    return rows, (note,)
