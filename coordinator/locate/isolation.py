"""Measuring one module pair exactly: full tensors fetched, errors against float64 torch, isolated replays.

An isolated replay runs the blamed module alone on the other side's exact tensors: its forward on torch's
inputs, or (backward locate) its backward on torch's inputs and the gradient torch's module received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from coordinator.locate.rank_agreement import Disagreement
from coordinator.locate.tensor_pairs import pair_tensors
from coordinator.locate.verdict import ABS_FLOOR, TAINT_LIMIT, ModuleVerdict
from coordinator.rank_group import disagreeing_rank
from coordinator.session import Session
from proto.codec import NamedArray

NOT_REPLAYED = "not replayed: "  # an Isolation's note when the replay could not be made (the finding stands)


@dataclass(frozen=True)
class Isolation:
    """The blamed call replayed on identical inputs, both directions."""

    ms_on_pt_inputs_err: float  # MindSpore cell on torch's recorded inputs, vs torch float64 on the same
    floor: float  # torch float32 vs float64 on those inputs
    ratio: float
    pt_on_ms_inputs_err: float  # torch module (float32) on MindSpore's recorded inputs, vs MindSpore's output
    confirmed: bool
    note: str = ""

    @property
    def replayed(self) -> bool:
        return not self.note.startswith(NOT_REPLAYED)


def _finite_parts(ref: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The elements finite on both sides, in float64; None when NaN or inf sit in different places (a NaN that
    one side's op turns into a number is a divergence, however close the rest is)."""
    ref64, cand64 = ref.astype(np.float64, copy=False), cand.astype(np.float64, copy=False)
    finite = np.isfinite(ref64)
    if not np.array_equal(finite, np.isfinite(cand64)):
        return None
    if not finite.all():
        if not np.array_equal(np.isnan(ref64), np.isnan(cand64)) or \
                not np.array_equal(ref64[np.isinf(ref64)], cand64[np.isinf(ref64)]):
            return None
        ref64, cand64 = ref64[finite], cand64[finite]
    return ref64, cand64


def l2(ref: np.ndarray, cand: np.ndarray) -> float:
    parts = _finite_parts(ref, cand)
    if parts is None:
        return math.inf
    ref64, cand64 = parts
    return float(np.linalg.norm(cand64 - ref64) / max(np.linalg.norm(ref64), np.finfo(np.float64).tiny))


def max_rel(ref: np.ndarray, cand: np.ndarray) -> float:
    parts = _finite_parts(ref, cand)
    if parts is None:
        return math.inf
    ref64, cand64 = parts
    return float(np.abs(cand64 - ref64).max(initial=0.0) / max(np.abs(ref64).max(initial=0.0), np.finfo(np.float64).tiny))


def worst(fn, refs: list[NamedArray], cands: list[NamedArray], pairs) -> float:
    arrays = [(refs[i].array, cands[j].array) for i, j in pairs
              if i < len(refs) and j < len(cands) and refs[i].array.dtype.kind == "f"]
    if not arrays:
        return math.nan
    return max(fn(r, c) for r, c in arrays)


class Fetcher:
    """Full tensors of recorded calls, counting the bytes that cross the wire.

    ``check_ranks``: the sides are split differently, so a rank group's tensors are fetched from every rank; where
    they differ, rank 0's are used and the call is noted in ``disagreements`` (locate settles them at the end)."""

    def __init__(self, session: Session, check_ranks: bool = False):
        self.session = session
        self.check_ranks = check_ranks
        self.bytes = 0
        self.disagreements: list[Disagreement] = []
        self._kept: dict[tuple, list[NamedArray]] = {}  # a call's tensors travel once per job

    def get(self, role: str, run: str, key: str, inputs: bool) -> list[NamedArray]:
        asked = (role, run, key, inputs)
        if asked not in self._kept:
            self._kept[asked] = self._fetch(role, run, key, inputs)
        return self._kept[asked]

    def _fetch(self, role: str, run: str, key: str, inputs: bool) -> list[NamedArray]:
        worker = self.session.pt if role == "pt" else self.session.ms
        if self.check_ranks and hasattr(worker, "rank_activations"):
            per_rank = worker.rank_activations(run, [key], inputs, not inputs)
            self.bytes += sum(t.array.nbytes for tensors in per_rank for t in tensors)
            rank = disagreeing_rank(per_rank)
            if rank is not None:
                self.disagreements.append(Disagreement(role, key, inputs, rank))
            return per_rank[0]
        tensors = list(worker.get_activations(run, [key], inputs, not inputs))
        self.bytes += sum(t.array.nbytes for t in tensors)
        return tensors


def isolate(session: Session, fetcher: Fetcher, verdict: ModuleVerdict, has_reference: bool,
            abs_floor: float = ABS_FLOOR) -> Isolation:
    """Replay the blamed call on identical inputs: the MindSpore cell on torch's, torch's module on MindSpore's."""
    pt_call, ms_call = verdict.pair.pt, verdict.pair.ms
    pt_inputs = fetcher.get("pt", "f32", pt_call.key, True)
    ms_inputs = fetcher.get("ms", "f32", ms_call.key, True)
    if len(pt_inputs) != len(ms_inputs):
        return Isolation(math.nan, math.nan, math.nan, math.nan, False,
                         f"cannot replay: torch's call takes {len(pt_inputs)} tensors, MindSpore's {len(ms_inputs)}")
    renamed = [NamedArray(f"input{i}", t.array, t.dtype) for i, t in enumerate(pt_inputs)]
    ms_out = session.ms.run_module(ms_call.path, ms_call.call, False, renamed)
    pt32_out = fetcher.get("pt", "f32", pt_call.key, False)
    reference = session.pt.run_module(pt_call.path, pt_call.call, True, renamed) if has_reference else pt32_out
    fetcher.bytes += sum(t.array.nbytes for t in (*renamed, *ms_out, *(reference if has_reference else ())))
    outs = pair_tensors([r.shape for r in reference], [m.shape for m in ms_out])
    err = worst(l2, reference, ms_out, outs.pairs)
    floor = worst(l2, reference, pt32_out, [(i, i) for i, _ in outs.pairs]) if has_reference else math.nan
    back = [NamedArray(f"input{i}", t.array, t.dtype) for i, t in enumerate(ms_inputs)]
    pt_on_ms = session.pt.run_module(pt_call.path, pt_call.call, False, back)
    fetcher.bytes += sum(t.array.nbytes for t in (*back, *pt_on_ms))
    ms_recorded = fetcher.get("ms", "f32", ms_call.key, False)
    reverse = worst(l2, pt_on_ms, ms_recorded, pair_tensors([a.shape for a in pt_on_ms],
                                                               [b.shape for b in ms_recorded]).pairs)
    base = max(floor, abs_floor) if not math.isnan(floor) else abs_floor
    ratio = err / base if not math.isnan(err) else math.nan
    shapes_ref, shapes_ms = [t.shape for t in reference], [t.shape for t in ms_out]
    if outs.shapes_differ:  # on identical inputs the outputs differ in shape: the module itself differs
        return Isolation(math.inf, floor, math.inf, reverse, True,
                         f"on identical inputs the outputs' shapes differ: torch {shapes_ref}, MindSpore {shapes_ms}")
    return Isolation(err, floor, ratio, reverse, bool(ratio >= TAINT_LIMIT))


def isolate_backward(session: Session, fetcher: Fetcher, verdict: ModuleVerdict, has_reference: bool,
                     abs_floor: float = ABS_FLOOR) -> Isolation:
    """Replay the blamed call's backward alone: the MindSpore cell on torch's forward inputs and the gradient
    torch's module received, against torch's own (float64) gradient passed on."""
    pt_call, ms_call = verdict.pair.pt, verdict.pair.ms
    forward_inputs = session.pt.get_activations("f32:forward", [pt_call.key], True, False)
    grads_in = fetcher.get("pt", "f32", pt_call.key, True)
    sent = [NamedArray(f"input{i}", t.array, t.dtype) for i, t in enumerate(forward_inputs)] + \
        [NamedArray(f"grad{i}", t.array, t.dtype) for i, t in enumerate(grads_in)]
    ms_out = session.ms.run_module(ms_call.path, ms_call.call, False, sent, backward=True)
    pt32_out = fetcher.get("pt", "f32", pt_call.key, False)
    reference = fetcher.get("pt", "f64", pt_call.key, False) if has_reference else pt32_out
    fetcher.bytes += sum(t.array.nbytes for t in (*sent, *ms_out))
    outs = pair_tensors([r.shape for r in reference], [m.shape for m in ms_out])
    err = worst(l2, reference, ms_out, outs.pairs)
    floor = worst(l2, reference, pt32_out, [(i, i) for i, _ in outs.pairs]) if has_reference else math.nan
    base = max(floor, abs_floor) if not math.isnan(floor) else abs_floor
    ratio = err / base if not math.isnan(err) else math.nan
    if not ms_out and reference:
        return Isolation(math.inf, floor, math.inf, math.nan, True,
                         "on torch's exact tensors the MindSpore cell passes no gradient back")
    return Isolation(err, floor, ratio, math.nan, bool(ratio >= TAINT_LIMIT),
                     "backward replay: MindSpore's cell on torch's forward inputs and incoming gradient")
