"""Pairing the tensors of one module call across the two sides: in order, among equal shapes.

A torch attention may return (output, attention weights) where its port returns (output, its KV
cache); a forward may take a position tensor the other side does not, or a mask one column wider.
Only the tensors both sides have are compared; the rest are named in the verdict's note. When the
first (main) tensors do not pair, the call's outputs differ in shape: a divergence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TensorPairing:
    """Index pairs (pt, ms) of the tensors compared, and the indices each side has alone."""

    pairs: tuple[tuple[int, int], ...]
    pt_alone: tuple[int, ...]
    ms_alone: tuple[int, ...]

    @property
    def shapes_differ(self) -> bool:
        """The main (first) tensors do not pair: the call's tensors differ in shape."""
        return bool(self.pt_alone or self.ms_alone) and (not self.pairs or self.pairs[0] != (0, 0))

    def note(self, what: str, pt_shapes: Sequence[tuple], ms_shapes: Sequence[tuple]) -> str:
        """What was left out, e.g. "pt has 1 extra output (shape (2, 4, 12, 12)), not compared"."""
        parts = []
        for side, alone, shapes in (("pt", self.pt_alone, pt_shapes), ("ms", self.ms_alone, ms_shapes)):
            if alone and not self.shapes_differ:
                listed = ", ".join(str(tuple(shapes[i])) for i in alone)
                parts.append(f"{side} has {len(alone)} extra {what}(s) (shape {listed}), not compared")
        return "; ".join(parts)


def pair_tensors(pt_shapes: Sequence[tuple], ms_shapes: Sequence[tuple]) -> TensorPairing:
    """Each torch tensor in order takes the next MindSpore tensor of its shape (skipping others)."""
    pairs, start = [], 0
    for i, shape in enumerate(pt_shapes):
        k = next((k for k in range(start, len(ms_shapes)) if tuple(ms_shapes[k]) == tuple(shape)), None)
        if k is not None:
            pairs.append((i, k))
            start = k + 1
    used_pt, used_ms = {i for i, _ in pairs}, {k for _, k in pairs}
    return TensorPairing(tuple(pairs), tuple(i for i in range(len(pt_shapes)) if i not in used_pt),
                         tuple(k for k in range(len(ms_shapes)) if k not in used_ms))


def summary_shapes(summaries) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(s.shape) for s in summaries)
