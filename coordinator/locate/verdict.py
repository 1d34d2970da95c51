"""Which paired module first made the MindSpore forward leave the torch one.

Every error is a relative L2 error against a float64 torch reference run on the same inputs and
weights: ``err`` is MindSpore's, ``floor`` is float32 torch's own (the noise any float32 port
carries). A tensor diverges when

    err >= ratio_limit * max(floor, abs_floor)          (defaults 10 and 1e-6)

so MindSpore must be ten times noisier than torch itself, and a floor of exactly zero (an exact op,
integer inputs) still needs err >= 1e-5 before anything is blamed: rounding at 1e-12 is not a bug.
Different output shapes always diverge. An error that could not be measured (NaN) falls back to the
second signal, the caller's rtol/atol allclose; when that is unknown too the module is not judged.

Pairs are walked in torch completion order (``end``: children before their parent). The first whose
output diverges is blamed when its inputs match (stricter: below TAINT_LIMIT = 3x their floor). When
its inputs already differ, the error started upstream: at the earliest call before it whose inputs
match and whose output is >= 3x its floor (a LayerNorm epsilon at 8x, whose error a GELU lifts past
10x), which is blamed; failing that, the code that made them is its enclosing module's own (between
its children), so the innermost enclosing paired module whose inputs match is blamed, provided its
output diverges too (a difference that does not leave the enclosing module is not the nets parting
ways: two calls paired that do not correspond, or a difference the rest of it cancels). A parent
whose children all match but whose output differs is reached after them and blamed itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from coordinator.locate.alignment import Alignment, CallPair
from coordinator.locate.tensor_pairs import pair_tensors

__all__ = [
    "ABS_FLOOR", "NO_REFERENCE_ABS_FLOOR", "RATIO_LIMIT", "TAINT_LIMIT", "CurvePoint", "Located", "ModuleVerdict", "PairErrors",
    "diverges", "first_divergent", "judge",
]

RATIO_LIMIT = 10.0
# Inputs match while below this (stricter than RATIO_LIMIT), and a module at or above it with matching
# inputs is where a smaller error starts: correct ports measured <= 1.6x everywhere (ViT, ResNet, MobileNetV2).
TAINT_LIMIT = 3.0
ABS_FLOOR = 1e-6  # about 8 float32 ulps of relative error
# Without a float64 reference (a torch net that does not run in float64) MindSpore is judged against
# torch float32 with no floor: a module diverges at >= 10 x 1e-5 = 1e-4 relative L2 error.
NO_REFERENCE_ABS_FLOOR = 1e-5


@dataclass(frozen=True)
class PairErrors:
    """What the caller measured for one paired call (NaN: not measured; no inputs: leave NaN)."""

    out_err: float
    out_floor: float
    in_err: float = math.nan
    in_floor: float = math.nan
    allclose_passed: bool | None = None


@dataclass(frozen=True)
class ModuleVerdict:
    pair: CallPair
    out_err: float
    out_floor: float
    out_ratio: float
    in_err: float
    in_floor: float
    in_ratio: float
    inputs_match: bool
    output_diverges: bool
    allclose_passed: bool | None
    signal: str  # why output_diverges: "noise", "shape", "allclose", "" (within noise), "unknown"
    note: str = ""

    @property
    def key(self) -> str:
        return self.pair.pt.key


class CurvePoint(NamedTuple):
    pt_path: str
    ms_path: str
    out_err: float
    out_floor: float
    ratio: float


@dataclass(frozen=True)
class Located:
    """The blamed module (None: nothing diverged) and the error along the net. ``bool()``: no blame."""

    blamed: ModuleVerdict | None
    first_diverging: ModuleVerdict | None
    reason: str
    curve: tuple[CurvePoint, ...]
    first_allclose_failure: ModuleVerdict | None = None

    def __bool__(self) -> bool:
        return self.blamed is None


def _ratio(err: float, floor: float, abs_floor: float) -> float:
    if math.isnan(err):
        return math.nan
    base = max(floor, abs_floor) if not math.isnan(floor) else abs_floor
    return err / base if base > 0 else (math.inf if err > 0 else 0.0)


def diverges(err: float, floor: float, ratio_limit: float = RATIO_LIMIT, abs_floor: float = ABS_FLOOR) -> bool:
    """The noise rule: err >= ratio_limit * max(floor, abs_floor); NaN never diverges."""
    ratio = _ratio(err, floor, abs_floor)
    return not math.isnan(ratio) and ratio >= ratio_limit


def _shapes(summaries) -> tuple[tuple[int, ...], ...]:
    return tuple(s.shape for s in summaries)


def _verdict(pair: CallPair, errors: PairErrors | None, ratio_limit: float, abs_floor: float) -> ModuleVerdict:
    e = errors or PairErrors(math.nan, math.nan)
    out_ratio = _ratio(e.out_err, e.out_floor, abs_floor)
    in_ratio = _ratio(e.in_err, e.in_floor, abs_floor)
    pt_in, ms_in = _shapes(pair.pt.inputs), _shapes(pair.ms.inputs)
    ins = pair_tensors(pt_in, ms_in)
    # inputs pair by position and shape: an argument only one side takes (a position tensor, a mask one column
    # wider) is named, not counted against the inputs matching
    in_shapes_match = bool(ins.pairs) or not (pt_in or ms_in)
    inputs_match = in_shapes_match and not (in_ratio >= min(TAINT_LIMIT, ratio_limit))
    notes = []
    if not in_shapes_match:
        notes.append(f"input shapes {pt_in} vs {ms_in}")
    elif ins.pt_alone or ins.ms_alone:
        notes.append(f"inputs compared: {len(ins.pairs)} of pt {pt_in} vs ms {ms_in}")
    pt_out, ms_out = _shapes(pair.pt.outputs), _shapes(pair.ms.outputs)
    outs = pair_tensors(pt_out, ms_out)
    if not outs.shapes_differ and outs.note("output", pt_out, ms_out):
        notes.append(outs.note("output", pt_out, ms_out))
    if outs.shapes_differ:
        signal, out_ratio = "shape", math.inf
        notes.append(f"output shapes {pt_out} vs {ms_out}")
    elif not math.isnan(out_ratio):
        signal = "noise" if out_ratio >= ratio_limit else ""
        if signal and e.allclose_passed:
            notes.append(f"within rtol/atol, but {out_ratio:.3g}x torch's own float32 error")
    elif e.allclose_passed is False:
        signal = "allclose"
        notes.append("error not measured; fails allclose")
    else:
        signal = "unknown" if e.allclose_passed is None else ""
    return ModuleVerdict(
        pair, e.out_err, e.out_floor, out_ratio, e.in_err, e.in_floor, in_ratio, inputs_match,
        signal in ("noise", "shape", "allclose"), e.allclose_passed, signal, "; ".join(notes),
    )


def judge(
    alignment: Alignment,
    errors: Mapping[str, PairErrors],
    ratio_limit: float = RATIO_LIMIT,
    abs_floor: float = ABS_FLOOR,
) -> list[ModuleVerdict]:
    """One verdict per pair, in completion order; ``errors`` is keyed by the torch call key."""
    return [_verdict(pair, errors.get(pair.key), ratio_limit, abs_floor) for pair in alignment.pairs]


def _enclosing(verdicts: Sequence[ModuleVerdict], inner: ModuleVerdict) -> list[ModuleVerdict]:
    """Paired calls around inner, innermost first."""
    around = [v for v in verdicts if v.pair.pt.encloses(inner.pair.pt)]
    return sorted(around, key=lambda v: v.pair.pt.start, reverse=True)


def _unpaired_inside(alignment: Alignment | None, verdict: ModuleVerdict) -> str:
    if alignment is None:
        return ""
    # MindSpore's own cells first (the port is where a bug lives), each side in execution order.
    ms_inside = sorted((u.call for u in alignment.unmatched_ms if verdict.pair.ms.encloses(u.call)), key=lambda c: c.start)
    pt_inside = sorted((u.call for u in alignment.unmatched_pt if verdict.pair.pt.encloses(u.call)), key=lambda c: c.start)
    inside = list(dict.fromkeys([f"ms {c.path}" for c in ms_inside] + [f"pt {c.path}" for c in pt_inside]))
    more = f" and {len(inside) - 8} more" if len(inside) > 8 else ""
    return f"; unpaired inside it: {', '.join(inside[:8])}{more}" if inside else ""


def first_divergent(verdicts: Sequence[ModuleVerdict], alignment: Alignment | None = None) -> Located:
    """Blame the first module (completion order) whose output diverges while its inputs match.

    Give ``alignment`` to have unpaired calls inside the blamed module named in the reason.
    """
    ordered = sorted(verdicts, key=lambda v: v.pair.pt.end)
    curve = tuple(CurvePoint(v.pair.pt.path, v.pair.ms.path, v.out_err, v.out_floor, v.out_ratio) for v in ordered)
    failing = next((v for v in ordered if v.allclose_passed is False), None)
    contained: list[ModuleVerdict] = []
    boundary: list[ModuleVerdict] = []
    for first in (v for v in ordered if v.output_diverges):
        why = _why(first)
        if first.inputs_match and _heals(ordered, first):
            boundary.append(first)
            continue
        if first.inputs_match:
            reason = f"{_name(first)}: {why}, its inputs match{_unpaired_inside(alignment, first)}"
            return Located(first, first, reason, curve, failing)
        origin = _origin(ordered, first)
        if origin is not None:
            reason = (
                f"{_name(origin)}: output error {origin.out_err:.3g} is {origin.out_ratio:.3g}x torch's float32 noise "
                f"with its inputs matching, and it grows from there to {_name(first)} ({why})"
                f"{_unpaired_inside(alignment, origin)}"
            )
            return Located(origin, first, reason, curve, failing)
        outer = next((o for o in _enclosing(ordered, first) if o.inputs_match), None)
        if outer is None:
            reason = f"{_name(first)}: {why}, but its inputs already differ and no enclosing paired module's inputs match"
            return Located(first, first, reason, curve, failing)
        if outer.output_diverges:
            reason = (
                f"{_name(outer)}: its own code between its children changed the inputs of {_name(first)} "
                f"({why}){_unpaired_inside(alignment, outer)}"
            )
            return Located(outer, first, reason, curve, failing)
        # The difference never leaves outer (whose inputs and output match): a pairing of two calls that
        # do not correspond, or a difference the rest of outer cancels. Not a divergence of the nets.
        contained.append(first)
    reason = "every paired module is within float32 noise of torch"
    starts = next((v for v in ordered if v.inputs_match and not math.isnan(v.out_ratio) and v.out_ratio >= TAINT_LIMIT
                   and v.signal != "shape" and v not in boundary), None)
    if starts is not None:
        reason = (f"no module diverges (>= {RATIO_LIMIT:g}x torch's float32 noise); the first above "
                  f"{TAINT_LIMIT:g}x with matching inputs, worth a look: {_name(starts)} at {starts.out_ratio:.3g}x")
    if contained:
        names = ", ".join(_name(v) for v in contained[:3]) + (f" and {len(contained) - 3} more" if len(contained) > 3 else "")
        reason += f" at the output of its enclosing module (differences contained inside: {names})"
    if boundary:
        names = ", ".join(_name(v) for v in boundary[:3]) + (f" and {len(boundary) - 3} more" if len(boundary) > 3 else "")
        reason += (f"; outputs differ at a module boundary and agree again at the next module ({names}): an op "
                   "applied just after the module on one side and inside it on the other, not a divergence")
    if failing is not None:
        reason += f" (first allclose failure: {_name(failing)}, at {failing.out_ratio:.3g}x torch's own error)"
    return Located(None, (contained or boundary or [None])[0], reason, curve, failing)


def _heals(ordered: Sequence[ModuleVerdict], first: ModuleVerdict) -> bool:
    """Whether first's difference is a module boundary, gone again where the nets go on: the next paired call
    after it (on both sides) has matching, measured inputs, and on at least one side something ran in between
    (first's output is not that call's input). torchvision's densenet applies F.relu after ``features`` where
    mindcv has the ReLU inside; timm's BatchNormAct2d holds the activation mindcv runs as the next cell. A
    difference that carries on is still found: the modules it reaches lead back to first (``_origin``)."""
    after = [v for v in ordered if v.pair.pt.start > first.pair.pt.end and v.pair.ms.start > first.pair.ms.end]
    if not after:
        return False
    following = min(after, key=lambda v: v.pair.pt.start)
    if not following.inputs_match or math.isnan(following.in_ratio):
        return False
    return not (_passes_through(first.pair.pt, following.pair.pt) and _passes_through(first.pair.ms, following.pair.ms))


def _passes_through(producer, consumer) -> bool:
    """Whether consumer's first input is producer's first output as it was (the same statistics)."""
    if not producer.outputs or not consumer.inputs:
        return True
    out, inp = producer.outputs[0], consumer.inputs[0]
    return (out.shape, out.min, out.max, out.mean, out.norm) == (inp.shape, inp.min, inp.max, inp.mean, inp.norm)


def _origin(ordered: Sequence[ModuleVerdict], first: ModuleVerdict) -> ModuleVerdict | None:
    """Where the error that reaches first's inputs starts: the earliest call completed before first began,
    not enclosing it, with matching inputs and an output at TAINT_LIMIT or more times its floor."""
    return next((v for v in ordered if v.pair.pt.end < first.pair.pt.start and v.inputs_match
                 and not math.isnan(v.out_ratio) and v.out_ratio >= TAINT_LIMIT), None)


def _name(verdict: ModuleVerdict) -> str:
    pt, ms = verdict.pair.pt, verdict.pair.ms
    call = f" (call {pt.call})" if pt.call else ""
    return f"pt {pt.path or '<root>'!s} ({pt.type}) ~ ms {ms.path or '<root>'!s} ({ms.type}){call}"


def _why(verdict: ModuleVerdict) -> str:
    if verdict.signal == "shape":
        return verdict.note or "output shapes differ"
    if verdict.signal == "allclose":
        return "output fails allclose (error not measured)"
    if math.isinf(verdict.out_err):
        return "its output holds NaN or inf where the other side's holds numbers (or in other places)"
    return (
        f"output error {verdict.out_err:.3g} is {verdict.out_ratio:.3g}x "
        f"torch's float32 noise {verdict.out_floor:.3g}"
    )
