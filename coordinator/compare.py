"""The compare job: same weights, same inputs, both nets in eval mode, outputs compared."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from coordinator import metrics, progress, randomness
from coordinator.metrics import TensorComparison
from coordinator.session import Session, SyncSummary
from proto.codec import NamedArray, TensorSpec, spec_of
from proto.errors import MsparityError, UsageError
from proto.weights.map_file import WeightMap
from proto.worker.interface import ForwardResult, WorkerDescription


@dataclass(frozen=True)
class CompareReport:
    """The outcome of one compare; ``bool()`` is whether every output matched."""

    passed: bool
    seed: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorComparison, ...]
    pt_only_outputs: tuple[str, ...]
    ms_only_outputs: tuple[str, ...]
    pt: WorkerDescription
    ms: WorkerDescription
    weights: SyncSummary | None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # how outputs were paired, what was left out

    def __bool__(self) -> bool:
        return self.passed


def choose_input_specs(
    shapes: list[TensorSpec], pt: WorkerDescription, ms: WorkerDescription
) -> list[TensorSpec]:
    """--input-shape if given, else the factories' example inputs (which must agree)."""
    if shapes:
        return shapes
    pt_specs, ms_specs = list(pt.example_inputs), list(ms.example_inputs)
    if pt_specs and ms_specs and pt_specs != ms_specs:
        raise UsageError(
            f"the factories' example inputs differ (pt {_specs_text(pt_specs)}, ms {_specs_text(ms_specs)}); "
            "pass --input-shape"
        )
    specs = pt_specs or ms_specs
    if not specs:
        raise UsageError("no input shapes: pass --input-shape SHAPE[:DTYPE] or --inputs FILE.npy, "
                         "or return (net, example_inputs) from a factory")
    return specs


def job_inputs(session: Session, input_shapes: list[TensorSpec] | None, input_arrays: list[NamedArray] | None,
               seed: int) -> tuple[list[NamedArray], list[TensorSpec] | None]:
    """The inputs a job sends both sides, and the specs they were generated from (None when not generated).

    The arrays given (--inputs); else random inputs for --input-shape; else a factory's example inputs
    as they are, when the factory asks for that (``use_input_values``: token ids, masks; pt's first);
    else random inputs shaped like the factories' example inputs.
    """
    if input_arrays:
        return input_arrays, None
    pt, ms = session.pt_description, session.ms_description
    if not input_shapes:
        for worker, description in ((session.pt, pt), (session.ms, ms)):
            if description.example_input_values:
                choose_input_specs([], pt, ms)  # both factories' example inputs must still agree
                return list(worker.get_example_inputs()), None
    specs = choose_input_specs(input_shapes or [], pt, ms)
    return randomness.generate_inputs(specs, seed), specs


def _specs_text(specs: list[TensorSpec]) -> str:
    return " ".join(f"{list(s.shape)}:{s.dtype}" for s in specs)


@dataclass(frozen=True)
class OutputPairing:
    """The outputs compared, those only one side returned, and notes on how they were paired."""

    results: tuple[TensorComparison, ...]
    pt_only: tuple[str, ...]
    ms_only: tuple[str, ...]
    notes: tuple[str, ...] = ()


def pair_outputs(pt: ForwardResult, ms: ForwardResult, rtol: float | None, atol: float | None,
                 equal_nan: bool) -> OutputPairing:
    """Compare outputs with the same flattened name; list the names only one side produced.

    When the names differ (a dict of outputs on one side, a tuple on the other) but both sides
    return as many tensors with the same shapes in the same order, they pair by position, and a
    note says so. Non-tensor leaves either side left out (a KV cache, None) are named in a note.
    """
    notes = [f"{role} left out non-tensor outputs: {', '.join(r.skipped)}" for role, r in (("pt", pt), ("ms", ms))
             if r.skipped]
    ms_by_name = {t.name: t for t in ms.outputs}
    pt_names = {t.name for t in pt.outputs}
    pairs = [(t, ms_by_name[t.name]) for t in pt.outputs if t.name in ms_by_name]
    pt_only = _other_form(notes, "pt", [t.name for t in pt.outputs if t.name not in ms_by_name], ms)
    ms_only = _other_form(notes, "ms", [t.name for t in ms.outputs if t.name not in pt_names], pt)
    if (pt_only or ms_only) and _same_structure(pt.outputs, ms.outputs):
        pairs, pt_only, ms_only = list(zip(pt.outputs, ms.outputs)), [], []
        notes.append("outputs paired by position (the two sides name them differently): "
                     + ", ".join(f"{a.name} ~ {b.name}" for a, b in pairs if a.name != b.name))
    results = tuple(metrics.compare_tensors(a, b, rtol, atol, equal_nan) for a, b in pairs)
    return OutputPairing(results, tuple(pt_only), tuple(ms_only), tuple(notes))


def _other_form(notes: list[str], role: str, only: list[str], other: ForwardResult) -> list[str]:
    """The one-sided outputs that are not the other side's non-tensor leaves in another form; those are noted.

    (GPT-2's cache: a DynamicCache object in torch, a tuple of tensors from mindone.)
    """
    skipped = {entry.rpartition(" (")[0]: entry.rpartition(" (")[2].rstrip(")") for entry in other.skipped}
    for prefix, kind in skipped.items():
        under = [name for name in only if name == prefix or name.startswith(prefix + ".")]
        if under:
            notes.append(f"{role} returns {prefix} as {len(under)} tensor(s), the other side as a {kind}: not compared")
            only = [name for name in only if name not in under]
    return only


def _same_structure(pt: tuple[NamedArray, ...], ms: tuple[NamedArray, ...]) -> bool:
    return len(pt) == len(ms) > 0 and all(a.shape == b.shape for a, b in zip(pt, ms))


def run_compare(
    session: Session,
    input_shapes: list[TensorSpec] | None = None,
    input_arrays: list[NamedArray] | None = None,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    sync_weights: bool = True,
    weight_map: WeightMap | None = None,
) -> CompareReport:
    """Sync weights (pt -> ms), seed both sides, send both the same inputs, compare the outputs."""
    seconds: dict[str, float] = {}
    pt_desc, ms_desc, sync, seconds["weights"] = session.prepare(seed, sync_weights, weight_map)
    inputs, specs = job_inputs(session, input_shapes, input_arrays, seed)
    start = time.perf_counter()
    with randomness.explain_index_errors(specs):
        with progress.activity("running both nets on the same inputs"):
            pt_outputs, ms_outputs = session.forward(inputs)
    seconds["forward"] = time.perf_counter() - start
    start = time.perf_counter()
    paired = pair_outputs(pt_outputs, ms_outputs, rtol, atol, equal_nan)
    seconds["compare"] = time.perf_counter() - start
    if not paired.results:
        raise MsparityError(f"nothing to compare: pt returned {[t.name for t in pt_outputs.outputs]}, ms returned "
                            f"{[t.name for t in ms_outputs.outputs]}" + "".join(f"; {n}" for n in paired.notes))
    if not any(r.total for r in paired.results):
        raise MsparityError("nothing to compare: every output is empty ("
                            + ", ".join(f"{r.ref_name} {list(r.ref_shape)}" for r in paired.results)
                            + "); give inputs with elements")
    return CompareReport(
        passed=all(paired.results) and not paired.pt_only and not paired.ms_only,
        seed=seed,
        inputs=tuple(spec_of(x) for x in inputs),
        outputs=paired.results,
        pt_only_outputs=paired.pt_only,
        ms_only_outputs=paired.ms_only,
        pt=pt_desc,
        ms=ms_desc,
        weights=sync,
        seconds={k: round(v, 4) for k, v in seconds.items()},
        notes=paired.notes,
    )
