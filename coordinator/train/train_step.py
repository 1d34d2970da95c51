"""The train-step job: same weights, same batches, one optimizer step (or N) on both sides, compared.

After each step the coordinator compares the loss, every gradient by parameter name, every updated
weight, every non-trainable state tensor (BatchNorm running statistics) and, for Adam, both moments.
Batches and targets are generated here once and sent to both workers; both steps run at the same
time. Names pair through the weight plan (the same map that synced the weights), and gradients and
moments go through the same value transform as their parameter.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from coordinator import metrics, progress, randomness
from coordinator.compare import job_inputs
from coordinator.metrics import TensorComparison
from coordinator.randomness import make_target
from coordinator.session import Session, SyncSummary
from coordinator.train.kink_flip import explain_kink_flip, isolated_difference
from proto.codec import NamedArray, TensorSpec, spec_of
from proto.errors import MsparityError, UsageError
from proto.weights.conversion import ms_tensor_from_pt
from proto.weights.map_file import WeightMap
from proto.weights.transforms import ms_part
from proto.weights.weight_plan import WeightPlan
from proto.worker.interface import (
    GRAD_PREFIX,
    LOSS_NAME,
    MOMENT_PREFIXES,
    REFERENCE_PREFIX,
    STATE_PREFIX,
    ParameterSpec,
    TrainOptions,
    WorkerDescription,
)

KINDS = ("grad", "weight", "buffer", "moment1", "moment2")
_TINY = 1e-30
# Adam divides by sqrt(v): an element whose gradient is rounding noise (the loss does not depend on it, e.g.
# a conv bias right before a BatchNorm, an attention key bias) gets a full +-lr step in a random direction on
# each side. Such elements (|grad| <= NOISE_GRAD_RATIO x the step's largest |grad| on both sides) are left out
# of the weight and moment comparisons of adaptive optimizers, and the row says how many.
NOISE_GRAD_RATIO = 1e-6


@dataclass(frozen=True)
class TensorRow:
    """One compared tensor of one step: a gradient, an updated weight, a buffer or an optimizer moment."""

    kind: str
    pt_name: str  # the torch parameter / buffer name
    ms_name: str
    module_type: str  # the torch module owning it (e.g. "BatchNorm2d")
    comparison: TensorComparison | None  # None: one side did not produce it (see note)
    note: str = ""
    error: float = math.nan  # MindSpore vs torch's float64 step, relative L2 (NaN: no reference)
    floor: float = math.nan  # torch float32 vs its float64 step: the rounding noise of this tensor
    isolated: str = ""  # a gradient whose difference from float64 sits in a few elements: where (else "")
    explained: str = ""  # why a row outside the noise still passes (a kink flip), else ""

    @property
    def noise_ratio(self) -> float:
        return metrics.noise_ratio(self.error, self.floor)

    @property
    def within_noise(self) -> bool:
        """Measured against the float64 step and below NOISE_RATIO_LIMIT times torch's own float32 error."""
        return not math.isnan(self.noise_ratio) and self.noise_ratio < metrics.NOISE_RATIO_LIMIT

    @property
    def passed(self) -> bool:
        """Within rtol/atol, or (where torch ran the step in float64 too) within float32 rounding noise."""
        return self.comparison is not None and (self.comparison.passed or self.within_noise or bool(self.explained))


@dataclass(frozen=True)
class StepResult:
    """Loss and tensors of one step."""

    step: int
    pt_loss: float
    ms_loss: float
    loss_passed: bool
    rows: tuple[TensorRow, ...]
    notes: tuple[str, ...] = ()  # what was explained rather than failed (a kink flip), to be confirmed

    @property
    def loss_rel_diff(self) -> float:
        return abs(self.ms_loss - self.pt_loss) / max(abs(self.pt_loss), _TINY)

    @property
    def passed(self) -> bool:
        return self.loss_passed and all(r.passed for r in self.rows)

    def failing(self, kind: str | None = None) -> list[TensorRow]:
        return [r for r in self.rows if not r.passed and (kind is None or r.kind == kind)]

    def count(self, kind: str) -> int:
        return sum(1 for r in self.rows if r.kind == kind)


@dataclass(frozen=True)
class TrainReport:
    """Every step of one train-step run; ``bool()`` is the verdict."""

    steps: tuple[StepResult, ...]
    options: TrainOptions
    seed: int
    inputs: tuple[TensorSpec, ...]
    target: TensorSpec
    order_note: str  # "" when torch and MindSpore list their trainable parameters in the same order
    hints: tuple[str, ...]
    pt: WorkerDescription
    ms: WorkerDescription
    weights: SyncSummary | None
    seconds: dict = field(default_factory=dict)

    kinds = KINDS  # what each step compares, in report order

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def __bool__(self) -> bool:
        return self.passed


def check_options(options: TrainOptions, steps: int) -> None:
    """Usage errors before any worker is touched (the options' own problem, as the workers would refuse it)."""
    if options.problem():
        raise UsageError(f"train-step: {options.problem()} (--loss, --optimizer, --lr)")
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")


def resolve_choice(what: str, chosen: str | None, pt_supplied: str, ms_supplied: str, default: str) -> str:
    """--loss / --optimizer when given; else the factories' own when both supply one; else the default."""
    if chosen == "factory" or (chosen is None and (pt_supplied or ms_supplied)):
        if pt_supplied and ms_supplied:
            return "factory"
        if chosen is None and not (pt_supplied and ms_supplied):
            side = "pt" if pt_supplied else "ms"
            raise UsageError(f"only the {side} factory supplies a {what}; supply one on both sides, or pass --{what} "
                             f"to use the same built-in {what} on both")
        missing = "pt" if not pt_supplied else "ms"
        raise UsageError(f"--{what} factory: the {missing} factory supplies no {what} (return {{'net': ..., "
                         f"'{what}': ...}} from it)")
    return chosen or default


def parameter_order_note(plan: WeightPlan, pt_params: tuple[ParameterSpec, ...],
                         ms_params: tuple[ParameterSpec, ...]) -> str:
    """Say whether MindSpore's trainable_params order (which names its gradients) follows torch's."""
    to_ms = {m.pt_name: m.ms_name for m in plan.mappings}
    pt_order = [to_ms.get(p.name, p.name) for p in pt_params if p.trainable]
    ms_order = [p.name for p in ms_params if p.trainable]
    if pt_order == ms_order:
        return ""
    common = [n for n in pt_order if n in set(ms_order)]
    ms_common = [n for n in ms_order if n in set(pt_order)]
    first = next((i for i, (a, b) in enumerate(zip(common, ms_common)) if a != b), None)
    where = (f"first difference at position {first}: torch {common[first]!r}, MindSpore {ms_common[first]!r}"
             if first is not None else f"torch has {len(pt_order)}, MindSpore {len(ms_order)} trainable parameters")
    return (f"the trainable parameters are in a different order ({where}); gradients are paired by name here, "
            "but a comparison by position (e.g. compare_grads_dir by number) would mispair them")


def _compare_named(kind: str, pt_key: str, ms_key: str, mapping, pt_by: dict, ms_by: dict, module_type: str,
                   rtol, atol, keep: np.ndarray | None = None) -> TensorRow | None:
    pt_tensor, ms_tensor = pt_by.get(pt_key), ms_by.get(ms_key)
    if pt_tensor is None and ms_tensor is None:
        return None
    if ms_tensor is not None:  # a torch part of a joined (concat) tensor is compared with its slice
        ms_tensor = NamedArray(ms_tensor.name, ms_part(mapping.transform, ms_tensor.array), ms_tensor.dtype)
    note = ""
    if pt_tensor is None or ms_tensor is None:
        missing = "torch" if pt_tensor is None else "MindSpore"
        if kind != "grad" or not _all_zero(pt_tensor if ms_tensor is None else ms_tensor):
            return TensorRow(kind, mapping.pt_name, mapping.ms_name, module_type, None, f"{missing} produced none")
        # torch leaves .grad None where the loss does not reach a parameter, MindSpore returns zeros: the same
        note = f"{missing} produced no gradient (the loss does not reach it); the other side's is all zeros"
        if pt_tensor is None:
            converted = NamedArray(ms_key, np.zeros_like(ms_tensor.array), ms_tensor.dtype)  # in MindSpore's layout
        else:
            converted = ms_tensor_from_pt(pt_tensor, ms_key, mapping.transform)
            ms_tensor = NamedArray(ms_key, np.zeros_like(converted.array), converted.dtype)
        return TensorRow(kind, mapping.pt_name, mapping.ms_name, module_type,
                         metrics.compare_tensors(converted, ms_tensor, rtol, atol), note)
    converted = ms_tensor_from_pt(pt_tensor, ms_key, mapping.transform)
    reference = pt_by.get(REFERENCE_PREFIX + pt_key)
    reference = ms_tensor_from_pt(reference, ms_key, mapping.transform) if reference is not None else None
    if keep is not None and keep.shape == ms_tensor.shape and not keep.all():
        skipped = int(keep.size - keep.sum())
        note = f"{skipped} of {keep.size} elements left out: their gradient is rounding noise"
        converted = NamedArray(converted.name, converted.array[keep], converted.dtype)
        ms_tensor = NamedArray(ms_tensor.name, ms_tensor.array[keep], ms_tensor.dtype)
        if reference is not None:
            reference = NamedArray(reference.name, reference.array[keep], reference.dtype)
    error, floor = _against_reference(reference, converted, ms_tensor)
    comparison = metrics.compare_tensors(converted, ms_tensor, rtol, atol)
    isolated = ""
    if kind == "grad" and not comparison.passed and metrics.noise_ratio(error, floor) >= metrics.NOISE_RATIO_LIMIT:
        isolated = isolated_difference(reference, converted, ms_tensor)
    return TensorRow(kind, mapping.pt_name, mapping.ms_name, module_type, comparison, note, error, floor, isolated)


def _against_reference(reference: NamedArray | None, pt: NamedArray, ms: NamedArray) -> tuple[float, float]:
    """(MindSpore's, torch float32's) relative L2 error against torch's float64 step; NaN without one."""
    if reference is None or reference.shape != ms.shape or reference.array.dtype.kind != "f":
        return math.nan, math.nan
    ref = reference.numeric()
    return metrics.rel_l2(ref, ms.numeric()), metrics.rel_l2(ref, pt.numeric())


def _all_zero(tensor: NamedArray) -> bool:
    return not np.any(tensor.numeric())


def _signal_masks(plan: WeightPlan, pt_by: dict, ms_by: dict) -> dict[tuple[str, str], np.ndarray]:
    """Per (torch, MindSpore) name pair: the elements whose gradient is more than rounding noise (in ms layout)."""
    grads = {}
    for m in plan.mappings:
        pt_grad, ms_grad = pt_by.get(GRAD_PREFIX + m.pt_name), ms_by.get(GRAD_PREFIX + m.ms_name)
        if pt_grad is not None and ms_grad is not None and pt_grad.array.dtype.kind == "f":
            grads[(m.pt_name, m.ms_name)] = (ms_tensor_from_pt(pt_grad, m.ms_name, m.transform).array,
                                             ms_part(m.transform, ms_grad.array))
    if not grads:
        return {}
    scale = max(float(np.abs(g).max(initial=0.0)) for pair in grads.values() for g in pair)
    limit = NOISE_GRAD_RATIO * scale
    return {name: (np.abs(a) > limit) | (np.abs(b) > limit) for name, (a, b) in grads.items()
            if a.shape == b.shape}


def compare_step(step: int, pt_out: list[NamedArray], ms_out: list[NamedArray], plan: WeightPlan,
                 pt_specs: dict[str, ParameterSpec], rtol, atol, adaptive: bool = False) -> StepResult:
    """Pair one step's streamed tensors by name through the plan and compare them."""
    pt_by = {t.name: t for t in pt_out}
    ms_by = {t.name: t for t in ms_out}
    if LOSS_NAME not in pt_by or LOSS_NAME not in ms_by:
        raise MsparityError(f"step {step}: a worker returned no loss")
    pt_loss = float(np.asarray(pt_by[LOSS_NAME].array, dtype=np.float64).reshape(-1)[0])
    ms_loss = float(np.asarray(ms_by[LOSS_NAME].array, dtype=np.float64).reshape(-1)[0])
    tol = metrics.resolve_tolerance("float32", rtol, atol)
    loss_passed = bool(np.isclose(ms_loss, pt_loss, rtol=tol.rtol, atol=tol.atol))
    if not loss_passed and REFERENCE_PREFIX + LOSS_NAME in pt_by:  # a loss apart by rounding noise alone passes
        ref_loss = float(np.asarray(pt_by[REFERENCE_PREFIX + LOSS_NAME].array, dtype=np.float64).reshape(-1)[0])
        ratio = metrics.noise_ratio(abs(ms_loss - ref_loss) / max(abs(ref_loss), _TINY),
                                    abs(pt_loss - ref_loss) / max(abs(ref_loss), _TINY))
        loss_passed = bool(ratio < metrics.NOISE_RATIO_LIMIT)
    rows: list[TensorRow] = []
    masks = _signal_masks(plan, pt_by, ms_by) if adaptive else {}
    for mapping in plan.mappings:
        spec = pt_specs.get(mapping.pt_name)
        module_type = spec.module_type if spec else ""
        trainable = bool(spec and spec.trainable)
        keys = [("weight" if trainable else "buffer", STATE_PREFIX)]
        if trainable:
            keys = [("grad", GRAD_PREFIX), *keys, *((p.rstrip(":"), p) for p in MOMENT_PREFIXES)]
        for kind, prefix in keys:
            keep = masks.get((mapping.pt_name, mapping.ms_name)) if kind != "grad" else None
            row = _compare_named(kind, prefix + mapping.pt_name, prefix + mapping.ms_name, mapping, pt_by, ms_by,
                                 module_type, rtol, atol, keep)
            if row is not None:
                rows.append(row)
    rows, notes = explain_kink_flip(rows) if loss_passed else (rows, ())
    return StepResult(step, pt_loss, ms_loss, loss_passed, tuple(sorted(rows, key=lambda r: KINDS.index(r.kind))), notes)


HINTS = (
    # (kind, module types, message): the first failing row of that kind in such a module gives the hint.
    ("buffer", ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"),
     "BatchNorm moving statistics differ: MindSpore's momentum weights the OLD value (moving = momentum*moving + "
     "(1-momentum)*batch), torch's the new one; torch momentum=0.1 is MindSpore momentum=0.9"),
)


def hints_for(steps: tuple[StepResult, ...]) -> tuple[str, ...]:
    """Known causes for the failures seen, one line each."""
    found: list[str] = []
    for kind, types, message in HINTS:
        if any(r.module_type in types for s in steps for r in s.failing(kind)) and message not in found:
            found.append(message)
    first = next((s for s in steps if not s.passed), None)
    if first is not None and first.loss_passed and not first.failing("grad") and (
            first.failing("weight") or first.failing("moment1") or first.failing("moment2")):
        found.append(f"step {first.step}: loss and gradients agree but the update differs: check the optimizer "
                     "and its hyperparameters (lr, momentum, betas, eps, weight decay) on both sides")
    return tuple(found)


def run_train_step(
    session: Session,
    input_shapes: list[TensorSpec] | None = None,
    input_arrays: list[NamedArray] | None = None,
    steps: int = 1,
    options: TrainOptions = TrainOptions(),
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    sync_weights: bool = True,
    weight_map: WeightMap | None = None,
    lockstep: bool = True,
) -> TrainReport:
    """Sync weights, then run ``steps`` training steps on both sides with identical batches and compare each.

    ``lockstep`` (default): before every step after the first, the torch weights and buffers are
    streamed into the MindSpore net again, so each step is judged from identical states and a
    difference is that step's own. Off: each side follows its own trajectory (loss curves of two
    free-running trainings; small differences compound, most visibly under Adam).
    """
    check_options(options, steps)
    seconds: dict[str, float] = {}
    pt_desc, ms_desc, sync, seconds["weights"] = session.prepare(seed, sync_weights, weight_map)
    pt_listing, ms_listing = session.both(session.pt.list_parameters, session.ms.list_parameters)
    from proto.weights.weight_plan import plan_from_listings

    plan = plan_from_listings(pt_listing, ms_listing, weight_map)
    pt_specs = {p.name: p for p in pt_listing.parameters}
    first, specs = job_inputs(session, input_shapes, input_arrays, seed)  # a fresh batch per step when generated
    batches = [first] + [randomness.generate_inputs(specs, seed + step) if specs else first for step in range(1, steps)]
    with randomness.explain_index_errors(specs):
        probe = session.pt.forward(batches[0]).outputs  # eval mode, no grad: only the output's shape is wanted
    if not probe:
        raise MsparityError("the pt net returned no output to take a loss of")
    rng = np.random.default_rng(seed)
    targets = [make_target(options.loss, spec_of(probe[0]), rng) for _ in range(steps)]
    results: list[StepResult] = []
    seconds["steps"] = 0.0
    moved = progress.callback("training steps on both sides", "steps")
    for step in range(steps):
        moved(step, steps)
        if lockstep and step > 0:
            start = time.perf_counter()
            session.sync_weights(weight_map)
            seconds["resync"] = seconds.get("resync", 0.0) + time.perf_counter() - start
        step_options = dataclasses.replace(options, reset=step == 0)
        start = time.perf_counter()
        pt_out, ms_out = session.both(
            lambda: list(session.pt.train_step(batches[step], targets[step], step_options)),
            lambda: list(session.ms.train_step(batches[step], targets[step], step_options)))
        seconds["steps"] += time.perf_counter() - start
        results.append(compare_step(step, pt_out, ms_out, plan, pt_specs, rtol, atol,
                                    adaptive=options.optimizer != "sgd"))
    steps_done = tuple(results)
    return TrainReport(
        steps=steps_done, options=options, seed=seed, inputs=tuple(spec_of(x) for x in batches[0]),
        target=spec_of(targets[0]), order_note=parameter_order_note(plan, pt_listing.parameters, ms_listing.parameters),
        hints=hints_for(steps_done), pt=pt_desc, ms=ms_desc, weights=sync,
        seconds={k: round(v, 4) for k, v in seconds.items()})
