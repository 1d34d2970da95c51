"""The locate job: the first module where the two nets part ways, judged against torch's own float32 noise.

1. Same weights and inputs as compare. Each worker runs ONE forward with every module / cell hooked
   and keeps the activations; the torch worker also runs a float64 copy of its net (the reference).
   Only per-call summaries come back (statistics and a count sketch per tensor).
2. Calls are aligned (coordinator/locate/alignment.py: parameters through the weight map, then paths,
   then execution order and shapes). For each pair the sketches estimate the relative L2 error of
   MindSpore vs float64 torch and the floor (float32 torch vs float64 torch), for outputs and inputs.
3. The verdict rule (coordinator/locate/verdict.py) blames the first module whose output error is
   >= 10x the floor while its inputs match. The calls around the divergence are then fetched in full
   and re-judged exactly, so a sketch's estimate never blames on its own.
4. ``isolate``: the blamed call is replayed on the MindSpore worker with the exact inputs torch's
   module saw (and torch's module on MindSpore's inputs), so it is judged with nothing carried in.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from coordinator import metrics, progress, randomness
from coordinator.compare import job_inputs
from coordinator.locate.alignment import Alignment, CallPair, align_calls
from coordinator.locate.backward_findings import loss_or_cut, unmeasured_containers
from coordinator.locate.isolation import (
    NOT_REPLAYED,
    Fetcher,
    Isolation,
    isolate,
    isolate_backward,
    l2,
    max_rel,
    worst,
)
from coordinator.locate.layer_hints import evidence_from_calls, hint_for
from coordinator.locate.module_settings import compared_settings
from coordinator.locate.permutation import moved_values_hint
from coordinator.locate.rank_agreement import refuse_undeclared_slices, settled
from coordinator.locate.tensor_pairs import pair_tensors, summary_shapes
from coordinator.locate.verdict import (
    ABS_FLOOR,
    NO_REFERENCE_ABS_FLOOR,
    RATIO_LIMIT,
    Located,
    ModuleVerdict,
    PairErrors,
    first_divergent,
    judge,
)
from coordinator.metrics import TensorComparison
from coordinator.rank_group import IsolationRefused, check_locate_layout
from coordinator.session import Session, SyncSummary
from proto.codec import NamedArray, TensorSpec, spec_of
from proto.errors import MsparityError
from proto.weights.map_file import WeightMap
from proto.weights.transforms import is_partial
from proto.worker.interface import RecordOptions, WorkerDescription
from proto.worker.module_records import SKETCH_SIZE, ModuleCall, estimate_rel_error

EXACT_NEIGHBOURS = 3  # calls before the first suspect that are fetched and re-judged exactly


@dataclass(frozen=True)
class ExactErrors:
    """Errors of one pair from the full tensors (relative L2 and relative max, MindSpore and torch f32 vs f64)."""

    out_err: float
    out_floor: float
    out_max_err: float
    out_max_floor: float
    in_err: float
    in_floor: float


@dataclass(frozen=True)
class LocateReport:
    """What locate found; ``bool()`` is True when no module is blamed."""

    located: Located
    verdicts: tuple[ModuleVerdict, ...]
    alignment: Alignment
    exact: dict
    isolation: Isolation | None
    hint: str | None
    outputs: tuple[TensorComparison, ...]  # the network outputs, plain rtol/atol (as compare)
    reference_note: str
    inputs: tuple[TensorSpec, ...]
    seed: int
    pt: WorkerDescription
    ms: WorkerDescription
    weights: SyncSummary | None
    traffic: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    abs_floor: float = ABS_FLOOR  # the smallest floor a module's error is divided by (larger without a reference)
    ratio_limit: float = RATIO_LIMIT  # a module diverges at this many times its floor
    backward: str = ""  # the loss of a backward locate ("": forward): calls' tensors are then gradients
    backward_note: str = ""  # why a backward locate stopped at the forward (it diverges already)

    @property
    def blamed(self) -> ModuleVerdict | None:
        return self.located.blamed

    @property
    def passed(self) -> bool:
        return self.located.blamed is None

    def __bool__(self) -> bool:
        return self.passed


def _rel_errors(refs, cands, pairs) -> float:
    """Largest estimated relative L2 error over the paired tensors; NaN when none pair or one cannot be estimated."""
    if not pairs:
        return math.nan
    errors = [estimate_rel_error(refs[i], cands[j]) for i, j in pairs]
    return max(errors) if not any(math.isnan(e) for e in errors) else math.nan


def tensor_pairs(pair: CallPair, inputs: bool) -> tuple[tuple[int, int], ...]:
    """Which of a pair's input (or output) tensors are compared: in order, among equal shapes."""
    pt, ms = (pair.pt.inputs, pair.ms.inputs) if inputs else (pair.pt.outputs, pair.ms.outputs)
    return pair_tensors(summary_shapes(pt), summary_shapes(ms)).pairs


def estimated_errors(alignment: Alignment, reference: dict[str, ModuleCall]) -> dict[str, PairErrors]:
    """Sketch estimates per pair: MindSpore vs float64 torch, and float32 torch vs float64 torch."""
    errors = {}
    for pair in alignment.pairs:
        ref = reference.get(pair.pt.key, pair.pt)
        same = ref is pair.pt  # no float64 run: judged against torch float32, floor unknown
        outs, ins = tensor_pairs(pair, False), tensor_pairs(pair, True)
        errors[pair.key] = PairErrors(
            out_err=_rel_errors(ref.outputs, pair.ms.outputs, outs),
            out_floor=math.nan if same else _rel_errors(ref.outputs, pair.pt.outputs, [(i, i) for i, _ in outs]),
            in_err=_rel_errors(ref.inputs, pair.ms.inputs, ins),
            in_floor=math.nan if same else _rel_errors(ref.inputs, pair.pt.inputs, [(i, i) for i, _ in ins]))
    return errors


def exact_errors(fetcher: Fetcher, verdict: ModuleVerdict, has_reference: bool) -> ExactErrors:
    """Fetch one pair's tensors and measure its errors exactly."""
    pt_key, ms_key = verdict.pair.pt.key, verdict.pair.ms.key
    sides = {}
    for inputs in (False, True):
        pt32 = fetcher.get("pt", "f32", pt_key, inputs)
        pt64 = fetcher.get("pt", "f64", pt_key, inputs) if has_reference else pt32
        ms32 = fetcher.get("ms", "f32", ms_key, inputs)
        pairs = tensor_pairs(verdict.pair, inputs)
        same = [(i, i) for i, _ in pairs]
        sides[inputs] = (worst(l2, pt64, ms32, pairs), worst(l2, pt64, pt32, same) if has_reference else math.nan,
                         worst(max_rel, pt64, ms32, pairs),
                         worst(max_rel, pt64, pt32, same) if has_reference else math.nan)
    out, inp = sides[False], sides[True]
    return ExactErrors(out[0], out[1], out[2], out[3], inp[0], inp[1])


def _rejudge(verdicts: list[ModuleVerdict], alignment: Alignment, exact: dict[str, ExactErrors],
             abs_floor: float) -> list[ModuleVerdict]:
    errors = {}
    for v in verdicts:
        e = exact.get(v.key)
        errors[v.key] = (PairErrors(e.out_err, e.out_floor, e.in_err, e.in_floor, v.allclose_passed) if e else
                         PairErrors(v.out_err, v.out_floor, v.in_err, v.in_floor, v.allclose_passed))
    return judge(alignment, errors, abs_floor=abs_floor)


def _hint(pair: CallPair) -> str | None:
    """The likely porting default behind a blamed pair: the settings the two modules really hold where they
    differ, else the type mismatch when the classes differ, else the known defaults of the layer type."""
    differ, equal = compared_settings(dict(pair.pt.attributes), dict(pair.ms.attributes))
    if differ:  # what the two modules really hold beats what the frameworks' defaults would be
        return f"{pair.pt.type} settings differ: " + "; ".join(differ)
    if "other type" in pair.how:
        return (f"torch runs a {pair.pt.type} at {pair.pt.path!r} and MindSpore a {pair.ms.type} at "
                f"{pair.ms.path!r}: port the layer as the same operation")
    evidence = {**evidence_from_calls(pair.pt, pair.ms, training=False), "settings_equal": equal}
    return hint_for(pair.pt.rule_type or pair.pt.type, pair.ms.rule_type or pair.ms.type, evidence)


def summary_bytes(calls: list[ModuleCall]) -> int:
    """Size of the summaries of calls on the wire (8 bytes per number, names and shapes ignored)."""
    return sum(8 * (8 + s.sketch.size) for c in calls for s in (*c.inputs, *c.outputs))


def dump_bytes(calls: list[ModuleCall]) -> int:
    """Size of a full dump of every call's tensors."""
    from proto import dtypes

    total = 0
    for c in calls:
        for s in (*c.inputs, *c.outputs):
            itemsize = 2 if s.dtype == dtypes.BFLOAT16 else np.dtype(dtypes.NUMPY_FROM_WIRE.get(s.dtype, "float32")).itemsize
            total += itemsize * int(np.prod(s.shape, dtype=np.int64))
    return total


def run_locate(
    session: Session,
    input_shapes: list[TensorSpec] | None = None,
    input_arrays: list[NamedArray] | None = None,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    sync_weights: bool = True,
    weight_map: WeightMap | None = None,
    isolate_blamed: bool = False,
    sketch_size: int = SKETCH_SIZE,
    float64_reference: bool = True,
    backward_loss: str = "",
) -> LocateReport:
    """Sync weights, record one hooked forward per side, align the calls and name the first divergent module.

    ``backward_loss`` ("mse", "cross-entropy", "factory"): record one forward and backward of that loss (train-step's,
    against the same generated target) instead, and name the first module, in backward order, whose gradient
    passed on diverges while the gradient flowing into it still matches."""
    seconds: dict[str, float] = {}
    pt_desc, ms_desc, sync, seconds["weights"] = session.prepare(seed, sync_weights, weight_map)
    plan = session.plan_weights(weight_map)
    alike = check_locate_layout(pt_desc, ms_desc, plan.mappings, *_listings_of_groups(session, pt_desc, ms_desc))
    inputs, specs = job_inputs(session, input_shapes, input_arrays, seed)
    start = time.perf_counter()
    with randomness.explain_index_errors(specs):
        recorded = inputs
        if backward_loss:
            probe = session.pt.forward(inputs).outputs
            if not probe:
                raise MsparityError("the pt net returned no output to take a loss of")
            recorded = [*inputs, randomness.make_target(backward_loss, spec_of(probe[0]), np.random.default_rng(seed))]
        with progress.activity("recording every module on both sides"
                               + (" (and torch's float64 reference)" if float64_reference else "")):
            pt_record, ms_record = session.both(
                lambda: session.pt.record(recorded, RecordOptions(sketch_size, seed, float64_reference, backward_loss)),
                lambda: session.ms.record(recorded, RecordOptions(sketch_size, seed, False, backward_loss)))
    pt_calls, pt_reference, pt_note, ms_calls = (list(pt_record.calls), list(pt_record.reference_calls),
                                                 pt_record.reference_note, list(ms_record.calls))
    seconds["record"] = time.perf_counter() - start
    if not pt_calls or not ms_calls:
        raise MsparityError("nothing recorded: a net ran without calling any module")
    start = time.perf_counter()
    # a part of a fused tensor (query of a qkv) says nothing about which whole module is the other's
    alignment = align_calls(pt_calls, ms_calls, {m.pt_name: None if is_partial(m.transform) else m.ms_name
                                                 for m in plan.mappings})
    if backward_loss:
        alignment = unmeasured_containers(alignment, pt_calls, ms_calls)
    if not alike:
        refuse_undeclared_slices(alignment, pt_desc.world_size, ms_desc.world_size)
    reference = {c.key: c for c in pt_reference}
    has_reference = bool(pt_reference)
    abs_floor = ABS_FLOOR if has_reference else NO_REFERENCE_ABS_FLOOR
    verdicts = judge(alignment, estimated_errors(alignment, reference), abs_floor=abs_floor)
    fetcher = Fetcher(session, check_ranks=not alike)
    exact: dict[str, ExactErrors] = {}
    located = first_divergent(verdicts, alignment)
    # Confirm with full tensors: the suspects and the calls just before them, until the verdict is stable.
    for _ in range(4):
        suspects = [v for v in (located.first_diverging, located.blamed) if v is not None]
        if not suspects:
            break
        ordered = sorted(verdicts, key=lambda v: v.pair.pt.end)
        at = min(ordered.index(v) for v in suspects)
        wanted = ordered[max(0, at - EXACT_NEIGHBOURS): at + 1] + suspects
        missing = [v for v in wanted if v.key not in exact]
        if not missing:
            break
        for v in missing:
            exact[v.key] = exact_errors(fetcher, v, has_reference)
        verdicts = _rejudge(verdicts, alignment, exact, abs_floor)
        located = first_divergent(verdicts, alignment)
    seconds["judge"] = time.perf_counter() - start
    if backward_loss and located.blamed is not None:
        located = loss_or_cut(located, verdicts, pt_calls)
    isolation = None
    if isolate_blamed and located.blamed is not None:
        start = time.perf_counter()
        replay = isolate_backward if backward_loss else isolate
        try:
            isolation = replay(session, fetcher, located.blamed, has_reference, abs_floor)
        except IsolationRefused as exc:  # the finding stands; say why it was not replayed
            isolation = Isolation(math.nan, math.nan, math.nan, math.nan, False, f"{NOT_REPLAYED}{exc}")
        seconds["isolate"] = time.perf_counter() - start
    hint = _hint(located.blamed.pair) if located.blamed is not None and located.blamed.pair.pt.path else None
    if located.blamed is not None and not backward_loss:
        pair = located.blamed.pair
        moved = moved_values_hint(fetcher.get("pt", "f32", pair.pt.key, False),
                                  fetcher.get("ms", "f32", pair.ms.key, False), pair.ms.path)
        hint = f"{moved}; {hint}" if moved and hint else moved or hint
    root_pt_key = next((c.key for c in pt_calls if c.path == ""), None)
    root_ms_key = next((c.key for c in ms_calls if c.path == ""), None)
    outputs: tuple = ()
    if root_pt_key is not None and root_ms_key is not None:  # a backward hook may not fire on a net's root
        root_pt, root_ms = fetcher.get("pt", "f32", root_pt_key, False), fetcher.get("ms", "f32", root_ms_key, False)
        what = "input gradient" if backward_loss else "output"
        names = [what] if len(root_pt) == 1 else [f"{what}.{i}" for i in range(len(root_pt))]
        outputs = tuple(metrics.compare_tensors(NamedArray(n, p.array, p.dtype), NamedArray(n, m.array, m.dtype), rtol,
                                                atol) for n, p, m in zip(names, root_pt, root_ms))
    rank_note = settled(fetcher.disagreements, located, verdicts)  # ranks unlike each other: a finding or an error
    if rank_note:
        hint = f"{rank_note}; {hint}" if hint else rank_note
    traffic = {"summary_bytes": summary_bytes(pt_calls) + summary_bytes(pt_reference) + summary_bytes(ms_calls),
               "fetched_bytes": fetcher.bytes,
               "full_dump_bytes": dump_bytes(pt_calls) + dump_bytes(pt_reference) + dump_bytes(ms_calls)}
    return LocateReport(
        located=located, verdicts=tuple(verdicts), alignment=alignment, exact=exact, isolation=isolation, hint=hint,
        outputs=outputs, reference_note=pt_note, inputs=tuple(spec_of(x) for x in inputs), seed=seed, pt=pt_desc,
        ms=ms_desc, weights=sync, traffic=traffic, seconds={k: round(v, 4) for k, v in seconds.items()},
        abs_floor=abs_floor, backward=backward_loss)


def run_backward_locate(session: Session, loss: str = "mse", **job) -> LocateReport:
    """Backward locate: the forward first (a module that already diverges there is the finding: gradients after
    it differ because its outputs do), then, when the forward agrees, the backward of ``loss``."""
    forward = run_locate(session, **job)
    if not forward.passed:
        return dataclasses.replace(forward, backward_note=f"the forward already diverges, so the backward of {loss} "
                                                          "was not located: fix the forward first")
    backward = run_locate(session, **{**job, "sync_weights": False}, backward_loss=loss)
    # one job: the weights the forward streamed are the backward's too, and its seconds count
    seconds = {**{f"forward_{k}": v for k, v in forward.seconds.items()}, **backward.seconds}
    return dataclasses.replace(backward, weights=forward.weights, seconds=seconds)


def _listings_of_groups(session: Session, pt_desc, ms_desc) -> tuple:
    """Both sides' listings (with their placements) when both run as groups of as many ranks; (None, None)
    otherwise."""
    if pt_desc.world_size <= 1 or pt_desc.world_size != ms_desc.world_size:
        return None, None
    return session.both(session.pt.list_parameters, session.ms.list_parameters)
