"""Pair the module calls of a torch forward with the cell calls of its MindSpore port.

Modules pair path to path, then call k of one with call k of the other, in four passes:

1. parameters: a torch module owning parameters pairs with the MindSpore cell owning what they map to
   (``name_map``; None: a part of a fused tensor, no evidence); when that owner's type is not compatible
   (MindSpore BatchNorm3d keeps its parameters in a child ``bn2d``), its nearest compatible ancestor;
2. paths: the two roots (the nets themselves, whatever their classes), then identical paths with
   compatible types (TYPE_EQUIVALENTS, plus equal class names) and equal input shapes; then an
   identical path where one side is a container holding the other's type, called as often with the
   same input shapes (torch ``MaxPool2d(padding=1)`` ported as ``SequentialCell(Pad, MaxPool2d)``);
3. execution order: the remaining calls (activations, dropout, pools, containers whose paths
   differ) are aligned between the calls already paired, in order of ``start``, by a longest common
   subsequence that requires compatible types, equal output shapes and the same call index;
4. other types: a module still unpaired whose path the other net also has, unpaired, with as many
   calls and the same input and output shapes call by call, pairs with it anyway (how="path, other
   type"): a ReLU ported as a LeakyReLU is a porting bug to judge, not a module to skip. Likewise
   when, between two paired calls, exactly one leaf call is left on each side with the same shapes
   (how="order, other type").

Every pairing after pass 1 must be consistent with what is already paired: a module whose
descendants are paired with cells outside the candidate cell (or the reverse) is not its
counterpart, however its path reads (mindcv's ``features.3`` is not torchvision's).

A module is paired with one cell at most, and all its calls with that cell's calls. Whatever
stays unpaired (an extra cell on one side, extra calls, a type no counterpart has) is listed with
its reason: reported, never compared, never blamed; a divergence it causes is blamed on the
innermost paired module around it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from proto.worker.module_records import ModuleCall

__all__ = ["TYPE_EQUIVALENTS", "Alignment", "CallPair", "Unmatched", "align_calls", "types_compatible"]

# torch class -> MindSpore classes that port it, where the names differ (same names pair anyway).
TYPE_EQUIVALENTS: dict[str, frozenset[str]] = {
    "Module": frozenset({"Cell"}),
    "Linear": frozenset({"Dense"}),
    "LayerNorm": frozenset({"LayerNormExt"}),  # mindspore.mint.nn.LayerNorm
    "Sequential": frozenset({"SequentialCell"}),
    "ModuleList": frozenset({"CellList"}),
    "ModuleDict": frozenset({"CellDict"}),
    "ConvTranspose1d": frozenset({"Conv1dTranspose"}),
    "ConvTranspose2d": frozenset({"Conv2dTranspose"}),
    "ConvTranspose3d": frozenset({"Conv3dTranspose"}),
    "InstanceNorm2d": frozenset({"GroupNorm"}),  # MS InstanceNorm2d fails on CPU: GroupNorm(C, C)
    "Hardswish": frozenset({"HSwish"}),
    "Hardsigmoid": frozenset({"HSigmoid"}),
    "ReflectionPad1d": frozenset({"Pad", "ReflectionPad1d"}),
    "ReflectionPad2d": frozenset({"Pad", "ReflectionPad2d"}),
    "ZeroPad2d": frozenset({"Pad", "ZeroPad2d"}),
    "ConstantPad2d": frozenset({"Pad", "ConstantPad2d"}),
    "Dropout2d": frozenset({"Dropout2d", "Dropout"}),
    "Softmax2d": frozenset({"Softmax"}),
}


@dataclass(frozen=True)
class CallPair:
    pt: ModuleCall
    ms: ModuleCall
    how: str  # "params" | "root" | "path" | "order"

    @property
    def key(self) -> str:
        return self.pt.key


@dataclass(frozen=True)
class Unmatched:
    call: ModuleCall
    side: str  # "pt" | "ms"
    reason: str


@dataclass(frozen=True)
class Alignment:
    """Paired calls in torch completion order (``end``), and the calls left out on each side."""

    pairs: tuple[CallPair, ...]
    unmatched_pt: tuple[Unmatched, ...]
    unmatched_ms: tuple[Unmatched, ...]

    def pair_for(self, pt_key: str) -> CallPair | None:
        return next((p for p in self.pairs if p.pt.key == pt_key), None)


def _class(call: ModuleCall) -> str:
    return call.rule_type or call.type


def types_compatible(pt: ModuleCall, ms: ModuleCall) -> bool:
    """Same class name (framework class or user class), or a listed torch -> MindSpore port."""
    pt_class, ms_class = _class(pt), _class(ms)
    if pt_class == ms_class or pt.type.lower() == ms.type.lower():
        return True
    return ms_class in TYPE_EQUIVALENTS.get(pt_class, ())


def _by_path(calls: Iterable[ModuleCall]) -> dict[str, list[ModuleCall]]:
    groups: dict[str, list[ModuleCall]] = {}
    for call in sorted(calls, key=lambda c: c.start):
        groups.setdefault(call.path, []).append(call)
    for group in groups.values():
        group.sort(key=lambda c: c.call)
    return groups


def _ancestors(path: str) -> Iterable[str]:
    """path itself, then each enclosing path up to the root ""."""
    while True:
        yield path
        if not path:
            return
        path = path.rpartition(".")[0]


def _common_prefix(paths: Sequence[str]) -> str:
    parts = [p.split(".") if p else [] for p in paths]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


class _Binder:
    """The one-to-one path pairing built up by the passes, with notes on paths left out."""

    def __init__(self, pt: dict[str, list[ModuleCall]], ms: dict[str, list[ModuleCall]]) -> None:
        self.pt, self.ms = pt, ms
        self.ms_of: dict[str, tuple[str, str]] = {}  # pt path -> (ms path, how)
        self.pt_of: dict[str, str] = {}
        self.notes: dict[str, str] = {}  # pt path -> why pass 1 did not pair it

    def bind(self, pt_path: str, ms_path: str, how: str) -> bool:
        if pt_path in self.ms_of or ms_path in self.pt_of:
            return False
        self.ms_of[pt_path] = (ms_path, how)
        self.pt_of[ms_path] = pt_path
        return True

    def by_params(self, name_map: Mapping[str, str | None]) -> None:
        owner = {name: path for path, calls in self.ms.items() for name in calls[0].param_names}
        for pt_path, calls in self.pt.items():
            names = calls[0].param_names
            if any(n in name_map and name_map[n] is None for n in names):
                self.notes[pt_path] = "its parameters are parts of fused tensors on the other side (split or concat)"
            owners = sorted({owner[name_map[n]] for n in names if name_map.get(n) in owner})
            if not names or pt_path in self.notes:
                continue
            if not owners:
                self.notes[pt_path] = "its parameters map to no MindSpore cell's own parameters"
                continue
            candidates = (a for a in _ancestors(_common_prefix(owners)) if a in self.ms)
            target = next((a for a in candidates if types_compatible(calls[0], self.ms[a][0])), None)
            if target is None:
                self.notes[pt_path] = f"its parameters live in ms {owners[0]!r}, a {_class(self.ms[owners[0]][0])}"
            elif not self.bind(pt_path, target, "params"):
                taken = self.pt_of.get(target)
                self.notes[pt_path] = f"its parameters' ms cell {target!r} is paired with pt {taken!r}"

    def consistent(self, pt_path: str, ms_path: str) -> bool:
        """Whether pairing these paths keeps every pairing made so far inside both or outside both."""
        return all(_under(p, pt_path) == _under(m, ms_path) and _under(pt_path, p) == _under(ms_path, m)
                   for p, (m, _) in self.ms_of.items())

    def by_path(self, pt_seq: Sequence[ModuleCall], ms_seq: Sequence[ModuleCall]) -> None:
        if "" in self.pt and "" in self.ms:
            self.bind("", "", "root")
        for pt_path, calls in self.pt.items():
            if pt_path in self.ms_of or pt_path not in self.ms:
                continue
            ms_first = self.ms[pt_path][0]
            if (types_compatible(calls[0], ms_first) and _inputs_compatible(calls[0], ms_first)
                    and self.consistent(pt_path, pt_path)):
                self.bind(pt_path, pt_path, "path")
        for pt_path, calls in self.pt.items():
            if pt_path in self.ms_of or pt_path not in self.ms or pt_path in self.pt_of:
                continue
            ms_calls = self.ms[pt_path]
            wraps = (_holds_compatible(ms_calls[0], ms_seq, calls[0], ms_side=True)
                     or _holds_compatible(calls[0], pt_seq, ms_calls[0], ms_side=False))
            same_inputs = len(calls) == len(ms_calls) and all(
                _inputs_compatible(p, m) for p, m in zip(calls, ms_calls))
            if wraps and same_inputs and self.consistent(pt_path, pt_path):
                self.bind(pt_path, pt_path, "path, container")


def _under(path: str, root: str) -> bool:
    return not root or path == root or path.startswith(root + ".")


def _in_shapes(call: ModuleCall) -> tuple[tuple[int, ...], ...]:
    return tuple(s.shape for s in call.inputs)


def _inputs_compatible(pt: ModuleCall, ms: ModuleCall) -> bool:
    """The same main input: the first tensor arguments agree in shape (an extra mask, cache position or position
    ids one side passes, or a mask one column wider, does not make two calls of one module different ones)."""
    pt_in, ms_in = _in_shapes(pt), _in_shapes(ms)
    return pt_in[:1] == ms_in[:1]


def _same_calls(pt_list: Sequence[ModuleCall], ms_list: Sequence[ModuleCall]) -> bool:
    """As many calls, with the same input and output shapes call by call."""
    return len(pt_list) == len(ms_list) and all(
        _inputs_compatible(p, m) and _shapes(p) == _shapes(m) for p, m in zip(pt_list, ms_list))


def _holds_compatible(container: ModuleCall, seq: Sequence[ModuleCall], other: ModuleCall, ms_side: bool) -> bool:
    """Whether a call inside container has a type compatible with other (a module of the other net)."""
    inside = (c for c in seq if container.encloses(c))
    return any(types_compatible(other, c) if ms_side else types_compatible(c, other) for c in inside)


def _lis_chain(anchors: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of anchors (pt position, ms position) increasing on both sides."""
    anchors = sorted(anchors)
    tails: list[int] = []  # ms position ending the best chain of each length
    tail_at: list[int] = []
    back: list[int] = []
    for index, (_, ms_pos) in enumerate(anchors):
        length = bisect.bisect_left(tails, ms_pos)
        if length == len(tails):
            tails.append(ms_pos)
            tail_at.append(index)
        else:
            tails[length] = ms_pos
            tail_at[length] = index
        back.append(tail_at[length - 1] if length else -1)
    chain = []
    index = tail_at[-1] if tail_at else -1
    while index >= 0:
        chain.append(anchors[index])
        index = back[index]
    return chain[::-1]


def _shapes(call: ModuleCall) -> tuple[tuple[int, ...], ...]:
    return tuple(s.shape for s in call.outputs)


def _lcs(pts: list[ModuleCall], mss: list[ModuleCall], match) -> list[tuple[ModuleCall, ModuleCall]]:
    """Best-scoring order-preserving pairing; match(p, m) gives a score > 0 or 0 for no pair."""
    rows, cols = len(pts), len(mss)
    if not rows or not cols:
        return []
    score = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            gain = match(pts[i], mss[j])
            best = max(score[i + 1][j], score[i][j + 1])
            score[i][j] = max(best, gain + score[i + 1][j + 1]) if gain else best
    pairs, i, j = [], 0, 0
    while i < rows and j < cols:
        gain = match(pts[i], mss[j])
        if gain and score[i][j] == gain + score[i + 1][j + 1]:
            pairs.append((pts[i], mss[j]))
            i, j = i + 1, j + 1
        elif score[i][j] == score[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def align_calls(
    pt_calls: Iterable[ModuleCall], ms_calls: Iterable[ModuleCall], name_map: Mapping[str, str | None]
) -> Alignment:
    """Pair torch module calls with MindSpore cell calls (see the module docstring for the rules)."""
    pt_seq = sorted(pt_calls, key=lambda c: c.start)
    ms_seq = sorted(ms_calls, key=lambda c: c.start)
    binder = _Binder(_by_path(pt_seq), _by_path(ms_seq))
    binder.by_params(name_map)
    binder.by_path(pt_seq, ms_seq)

    pairs: list[CallPair] = []
    left_pt: dict[str, str] = {}  # call key -> reason
    left_ms: dict[str, str] = {}
    for pt_path, (ms_path, how) in binder.ms_of.items():
        pt_list, ms_list = binder.pt[pt_path], binder.ms[ms_path]
        for pt_call, ms_call in zip(pt_list, ms_list):
            pairs.append(CallPair(pt_call, ms_call, how))
        counts = f"called {len(pt_list)} time(s) in torch, {len(ms_list)} in MindSpore"
        for extra in pt_list[len(ms_list) :]:
            left_pt[extra.key] = f"paired with ms {ms_path!r} but {counts}"
        for extra in ms_list[len(pt_list) :]:
            left_ms[extra.key] = f"paired with pt {pt_path!r} but {counts}"

    pairs.extend(_by_order(pt_seq, ms_seq, pairs, binder, left_pt, left_ms))
    pairs.extend(_by_path_other_type(binder, {p.pt.key for p in pairs}, {p.ms.key for p in pairs}))
    pairs.extend(_lone_leaves(pt_seq, ms_seq, pairs, binder, left_pt, left_ms))
    paired_pt = {p.pt.key for p in pairs}
    paired_ms = {p.ms.key for p in pairs}
    unmatched_pt = tuple(
        Unmatched(c, "pt", left_pt.get(c.key) or _why_left(c, binder.notes.get(c.path), "MindSpore"))
        for c in pt_seq if c.key not in paired_pt
    )
    unmatched_ms = tuple(
        Unmatched(c, "ms", left_ms.get(c.key) or _why_left(c, None, "torch"))
        for c in ms_seq if c.key not in paired_ms
    )
    pairs.sort(key=lambda p: p.pt.end)
    return Alignment(tuple(pairs), unmatched_pt, unmatched_ms)


def _why_left(call: ModuleCall, note: str | None, other: str) -> str:
    shapes = [list(s) for s in _shapes(call)]
    order = f"no {other} call of a compatible type with output shapes {shapes} at its place in execution order"
    return f"{note}; {order}" if note else order


def _by_path_other_type(binder: _Binder, paired_pt: set[str], paired_ms: set[str]) -> list[CallPair]:
    """Pass 4: unpaired paths present on both sides with the same calls' shapes, whatever their types."""
    found = []
    for path, pt_list in binder.pt.items():
        ms_list = binder.ms.get(path)
        if ms_list is None or path in binder.ms_of or path in binder.pt_of or len(ms_list) != len(pt_list):
            continue
        if any(c.key in paired_pt for c in pt_list) or any(c.key in paired_ms for c in ms_list):
            continue
        if _same_calls(pt_list, ms_list) and binder.consistent(path, path) and binder.bind(
                path, path, "path, other type"):
            found.extend(CallPair(p, m, "path, other type") for p, m in zip(pt_list, ms_list))
    return found


def _by_order(pt_seq, ms_seq, paired: list[CallPair], binder: _Binder, left_pt, left_ms) -> list[CallPair]:
    """Pass 3: align the calls of still-unpaired paths between the anchors, segment by segment."""
    free_pt = [c.path not in binder.ms_of and c.key not in left_pt for c in pt_seq]
    free_ms = [c.path not in binder.pt_of and c.key not in left_ms for c in ms_seq]
    found: list[CallPair] = []
    consistent: dict[tuple[str, str], bool] = {}

    def match(p: ModuleCall, m: ModuleCall) -> float:
        if p.call != m.call or _shapes(p) != _shapes(m) or not types_compatible(p, m):
            return 0.0
        bound, back = binder.ms_of.get(p.path), binder.pt_of.get(m.path)
        if (bound and bound[0] != m.path) or (back and back != p.path):
            return 0.0
        if not bound and (p.path, m.path) not in consistent:
            consistent[p.path, m.path] = binder.consistent(p.path, m.path)
        if not bound and not consistent[p.path, m.path]:
            return 0.0
        return 1.5 if p.type == m.type else 1.0

    for pt_range, ms_range in _segments(pt_seq, ms_seq, paired):
        pts = [pt_seq[i] for i in pt_range if free_pt[i]]
        mss = [ms_seq[j] for j in ms_range if free_ms[j]]
        for p, m in _lcs(pts, mss, match):
            if binder.ms_of.get(p.path, (m.path,))[0] == m.path and binder.pt_of.get(m.path, p.path) == p.path:
                binder.ms_of.setdefault(p.path, (m.path, "order"))
                binder.pt_of.setdefault(m.path, p.path)
                found.append(CallPair(p, m, "order"))
    return found


def _segments(pt_seq, ms_seq, pairs: Sequence[CallPair]):
    """(pt positions, ms positions) strictly between consecutive anchors of the paired calls' chain."""
    pt_pos = {c.key: i for i, c in enumerate(pt_seq)}
    ms_pos = {c.key: i for i, c in enumerate(ms_seq)}
    chain = _lis_chain([(pt_pos[p.pt.key], ms_pos[p.ms.key]) for p in pairs])
    bounds = [(-1, -1), *chain, (len(pt_seq), len(ms_seq))]
    for (pt_lo, ms_lo), (pt_hi, ms_hi) in zip(bounds, bounds[1:]):
        yield range(pt_lo + 1, pt_hi), range(ms_lo + 1, ms_hi)


def _is_leaf(call: ModuleCall) -> bool:
    return call.end == call.start + 1  # nothing was recorded between its pre- and post-hook


def _lone_leaves(pt_seq, ms_seq, pairs: Sequence[CallPair], binder: _Binder, left_pt, left_ms) -> list[CallPair]:
    """Pass 4b: one unpaired leaf call on each side between two paired calls, same shapes: a swapped layer."""
    paired_pt = {p.pt.key for p in pairs}
    paired_ms = {p.ms.key for p in pairs}
    found = []
    for pt_range, ms_range in _segments(pt_seq, ms_seq, pairs):
        # Containers starting in the gap (torchvision's Conv2dNormActivation around a ReLU6) are not rivals.
        pts = [pt_seq[i] for i in pt_range
               if _is_leaf(pt_seq[i]) and pt_seq[i].key not in paired_pt and pt_seq[i].key not in left_pt]
        mss = [ms_seq[j] for j in ms_range
               if _is_leaf(ms_seq[j]) and ms_seq[j].key not in paired_ms and ms_seq[j].key not in left_ms]
        if len(pts) != 1 or len(mss) != 1:
            continue
        p, m = pts[0], mss[0]
        if not (p.call == m.call and _same_calls([p], [m])):
            continue
        if p.path in binder.ms_of or m.path in binder.pt_of or not binder.consistent(p.path, m.path):
            continue
        if len(binder.pt[p.path]) == 1 and len(binder.ms[m.path]) == 1 and binder.bind(p.path, m.path, "order, other type"):
            found.append(CallPair(p, m, "order, other type"))
    return found
