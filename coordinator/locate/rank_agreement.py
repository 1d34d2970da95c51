"""Calls whose ranks hold different tensors, when locate compares whole activations across layouts: a finding when
it is the blamed module's own output (whole on the other side, not whole here: a reduction its port lacks), an
error when it is anything a verdict rests on (an undeclared slice or partial sum), ignored after the finding."""

from __future__ import annotations

import math
from dataclasses import dataclass

from coordinator.locate.tensor_pairs import summary_shapes
from coordinator.locate.verdict import Located, ModuleVerdict
from coordinator.rank_group import disagreement_message
from proto.errors import MsparityError


@dataclass(frozen=True)
class Disagreement:
    """A call fetched in full whose ranks differ: the side, the call, which tensors, the first rank unlike rank 0."""

    role: str
    key: str
    inputs: bool
    rank: int


def settled(disagreements: list[Disagreement], located: Located, verdicts: list[ModuleVerdict]) -> str | None:
    """The note to add to the finding, or None; raises where a disagreement leaves a verdict unfounded."""
    blamed = located.blamed
    ends = {(role, getattr(v.pair, role).key): v.pair.pt.end for v in verdicts for role in ("pt", "ms")}
    limit = blamed.pair.pt.end if blamed is not None else math.inf
    note = None
    for d in disagreements:
        if ends.get((d.role, d.key), -1) > limit:
            continue  # after the finding: its difference explains this one
        own = blamed is not None and d.key == getattr(blamed.pair, d.role).key and not d.inputs
        if own and summary_shapes(blamed.pair.pt.outputs) == summary_shapes(blamed.pair.ms.outputs):
            path = getattr(blamed.pair, d.role).path
            other = "torch's" if d.role == "ms" else "MindSpore's"
            note = (f"the {d.role} ranks' outputs of {path!r} differ (rank 0 and rank {d.rank}) where {other} are "
                    f"whole, and the factory declares them neither a slice nor a partial sum: a reduction (an "
                    f"all-reduce) missing in the port's {path!r}, or a partial sum to declare")
            continue
        raise MsparityError(disagreement_message(d.role, d.key, d.inputs, d.rank))
    return note


def refuse_undeclared_slices(alignment, pt_world: int, ms_world: int) -> None:
    """Across different layouts, the first call (in torch's order) whose inputs or outputs on one side are a rank's
    slice of the other side's is named with its declaration: paired by its parameters (a column-parallel layer) or
    run by both sides at one path and left unpaired for its shapes (an activation fed a slice), it would otherwise
    be judged on a slice, or skipped while its parent took the blame."""
    ms_unpaired = {u.call.key: u.call for u in alignment.unmatched_ms}
    candidates = [(p.pt, p.ms) for p in alignment.pairs]
    candidates += [(u.call, ms_unpaired[u.call.key]) for u in alignment.unmatched_pt
                   if u.call.path and u.call.key in ms_unpaired]
    for pt_call, ms_call in sorted(candidates, key=lambda pair: pair[0].end):
        for side in ("inputs", "outputs"):
            pt_shapes, ms_shapes = summary_shapes(getattr(pt_call, side)), summary_shapes(getattr(ms_call, side))
            for pt_shape, ms_shape in zip(pt_shapes, ms_shapes):
                dim = _sliced_dim(pt_shape, ms_shape, pt_world, ms_world)
                if dim is not None:
                    raise MsparityError(_undeclared(pt_call, ms_call, side, pt_shape, ms_shape, dim))


def _undeclared(pt_call, ms_call, side: str, pt_shape: tuple, ms_shape: tuple, dim: int) -> str:
    role = "pt" if math.prod(pt_shape) < math.prod(ms_shape) else "ms"
    call, mine, theirs = (pt_call, pt_shape, ms_shape) if role == "pt" else (ms_call, ms_shape, pt_shape)
    at = dim - len(mine)
    return (f"locate across different layouts compares whole activations, but the {role} side's {call.path!r} "
            f"{side} are {list(mine)} against {list(theirs)} on the other: a rank's slice along dim {at}; declare "
            f"it in the {role} factory, \"activations\": {{\"{call.path}\": {{\"{side}\": \"shard({at})\"}}}}")


def _sliced_dim(a: tuple, b: tuple, *worlds: int) -> int | None:
    """The one dim along which a is b split over one of the world sizes (or the other way round), else None."""
    if len(a) != len(b) or a == b:
        return None
    apart = [d for d in range(len(a)) if a[d] != b[d]]
    if len(apart) != 1:
        return None
    small, large = sorted((a[apart[0]], b[apart[0]]))
    return apart[0] if small and large % small == 0 and large // small in {w for w in worlds if w > 1} else None
