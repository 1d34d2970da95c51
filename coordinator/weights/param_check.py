"""The finder's parameter check after a weight sync: is each MindSpore parameter the torch one it was set from?

Both workers digest their tensors where they are (GetWeightDigests); a mapping that copies values as they are
(no transform) with equal digests on both sides is exact without moving a byte. Only the rest (transposed,
split or joined tensors, other dtypes, real differences) travel and go through the full metrics, so the check
costs two hashes instead of three transfers of the model. Workers that cannot digest (a rank group, a worker
older than 1.6) fall back to streaming everything."""

from __future__ import annotations

import math

from coordinator.metrics import TensorComparison, resolve_tolerance
from coordinator.weights.ckpt_compare import ShapeRow, WeightsComparison, _compare
from proto.errors import WorkerError
from proto.weights.weight_plan import WeightPlan


def _digests(worker, names) -> dict | None:
    try:
        return {spec.name: (spec, digest) for spec, digest in worker.weight_digests(names)}
    except WorkerError as exc:
        if exc.status == "UNIMPLEMENTED":  # a worker older than 1.6
            return None
        raise


def _same(pt: tuple, ms: tuple) -> bool:
    """Equal values: the same dtype, shape and digest (the names differ wherever the map renames)."""
    (pt_spec, pt_digest), (ms_spec, ms_digest) = pt, ms
    return (pt_spec.dtype, tuple(pt_spec.shape), pt_digest) == (ms_spec.dtype, tuple(ms_spec.shape), ms_digest)


def _exact(shown: str, ms_name: str, spec, rtol: float, atol: float) -> TensorComparison:
    tol = resolve_tolerance(spec.dtype, rtol, atol)
    total = math.prod(int(dim) for dim in spec.shape)
    return TensorComparison(shown, ms_name, spec.shape, spec.shape, spec.dtype, spec.dtype, tol.rtol, tol.atol,
                            passed=True, allclose_ratio=1.0, cosine_similarity=1.0, max_abs_diff=0.0,
                            mean_abs_diff=0.0, max_rel_diff=0.0, mismatched=0, total=total)


class _Reader:
    """The reader interface _compare takes, over the ms worker's tensors fetched by name when asked."""

    def __init__(self, worker, specs: dict):
        self._worker, self._specs = worker, specs

    def specs(self):
        return [spec for spec, _ in self._specs.values()]

    def read(self, name: str):
        return next(iter(self._worker.get_weights([name])))


def check_params(session, plan: WeightPlan, rtol: float = 1e-4, atol: float = 1e-4) -> WeightsComparison:
    """Shape and value rows of every mapped parameter, TroubleShooter's table, in the plan's order."""
    if not (hasattr(session.pt, "weight_digests") and hasattr(session.ms, "weight_digests")):
        return None  # a rank group: its ranks' slices have no whole digest
    # each worker hashes its own tensors: both at once
    pt_digests, ms_digests = session.both(lambda: _digests(session.pt, plan.pt_names), lambda: _digests(session.ms, []))
    if pt_digests is None or ms_digests is None:
        return None
    exact = {m.ms_name for m in plan.mappings if m.transform == "identity" and m.pt_name in pt_digests
             and m.ms_name in ms_digests and _same(pt_digests[m.pt_name], ms_digests[m.ms_name])}
    rest = WeightPlan(tuple(m for m in plan.mappings if m.ms_name not in exact), ())
    checked = WeightsComparison((), ())
    if rest.mappings:
        shown = {m.ms_name: m.pt_name for m in rest.mappings}
        others = {name: entry for name, entry in ms_digests.items() if name not in exact}
        checked = _compare(rest.convert(session.pt.get_weights(rest.pt_names)), shown.get,
                           _Reader(session.ms, others), True, rtol, atol, False)
    shape_rows, value_rows, placed = [], [], set()
    for mapping in plan.mappings:  # the plan's order, as the streamed comparison prints it
        name = mapping.ms_name
        if name in placed:
            continue
        placed.add(name)
        if name in exact:
            spec = ms_digests[name][0]
            shape_rows.append(ShapeRow(mapping.pt_name, name, True, spec.shape, spec.shape))
            value_rows.append(_exact(mapping.pt_name, name, spec, rtol, atol))
        else:
            shape_rows += [r for r in checked.shape_rows if r.target_name == name]
            value_rows += [v for v in checked.values if v.cand_name == name]
    shape_rows += [r for r in checked.shape_rows if r.target_name is None or r.target_name not in placed]
    return WeightsComparison(tuple(shape_rows), tuple(value_rows))
