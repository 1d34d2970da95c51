"""Pairing two live nets' weights without a hand-written map: names first, then structure.

Each stage pairs what the ones before it left:
1. ``name``: the same name on both sides, shapes compatible (mindone's ports keep torch's names);
2. ``rules``: the name the PyTorch -> MindSpore layer rules give (BatchNorm weight -> gamma, ...);
3. ``structure``: the modules owning the rest, aligned in registration order by their parameters'
   shapes (a sequence alignment: what PaDiff's layer map asks users to write by hand); inside a
   module pair, local names pair by name, then by the rules, then in order among compatible shapes.

Shapes are compatible as they are or after one known transform (proto/weights/transforms.py): a
Conv1d weight gains MindSpore's axis, a 1x1 Conv2d ported as a Dense is squeezed (or the reverse),
and, inside a module pair only, a 2-d weight may be transposed. A torch entry left unpaired keeps
its layer-rule name, so the plan says what is wrong with it (a bias the port lacks, BatchNorm's
num_batches_tracked, a missing layer).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proto.weights import layer_rules
from proto.weights.map_file import WeightMap

if TYPE_CHECKING:  # the listing types only: weights need no worker runtime
    from proto.worker.interface import ParameterListing, ParameterSpec

SHOWN = 5  # names shown per list in a summary


@dataclass(frozen=True)
class Pairing:
    """One torch entry paired with one MindSpore parameter, the transform between them and how it was found."""

    pt_name: str
    ms_name: str
    transform: str
    how: str  # "name" | "rules" | "structure"
    parts: tuple[str, ...] = ()  # a split: the MindSpore tensors one torch tensor feeds (ms_name is the first)


@dataclass(frozen=True)
class MatchResult:
    """What the matcher paired, what it could not, and the module renames the structure pairs suggest."""

    pairings: tuple[Pairing, ...]
    unmatched_pt: tuple[str, ...]
    unmatched_ms: tuple[str, ...]
    renames: tuple[tuple[str, str, int], ...]  # (torch module path prefix, MindSpore prefix, tensors)
    rule_names: dict[str, str]  # torch entry -> its layer-rule name (what an unpaired entry maps to)

    def weight_map(self) -> WeightMap:
        """The pairings as a map; unpaired torch entries map to their layer-rule names (the plan judges them)."""
        name_map: dict = dict(self.rule_names)
        name_map.update({p.pt_name: list(p.parts) if p.parts else p.ms_name for p in self.pairings})
        values = {p.pt_name: p.transform for p in self.pairings if p.transform != "identity"}
        return WeightMap(name_map, values)

    def counts(self) -> dict[str, int]:
        """How many pairings each stage found."""
        return dict(Counter(p.how for p in self.pairings))

    def summary(self) -> str:
        """One line: the pairings by stage, the unpaired (counts and the first few) and suggested renames."""
        found = ", ".join(f"{n} by {how}" for how, n in self.counts().items()) or "nothing"
        parts = [f"weights paired automatically: {found}"]
        for side, names in (("torch", self.unmatched_pt), ("MindSpore", self.unmatched_ms)):
            if names:
                parts.append(f"{len(names)} {side} tensor(s) unpaired: {_first(names)}")
        if self.renames:
            parts.append("module renames seen: " + ", ".join(f"{a or '<root>'} -> {b or '<root>'} ({n})"
                                                            for a, b, n in self.renames[:SHOWN]))
        return "; ".join(parts)


def _first(names: Sequence[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def shape_transform(pt_shape: tuple[int, ...], ms_shape: tuple[int, ...], allow_transpose: bool = False) -> str | None:
    """The transform that makes a torch tensor of pt_shape into ms_shape, or None when none known does."""
    pt_shape, ms_shape = tuple(pt_shape), tuple(ms_shape)
    if pt_shape == ms_shape:
        return "identity"
    if len(pt_shape) == 3 and ms_shape == pt_shape[:2] + (1,) + pt_shape[2:]:
        return "expand_dims_axis2"  # Conv1d -> MindSpore's 2-d kernel
    if len(pt_shape) == 4 and pt_shape[2:] == (1, 1) and ms_shape == pt_shape[:2]:
        return "squeeze(2,3)"  # a 1x1 Conv2d ported as a Dense
    if len(pt_shape) == 2 and ms_shape == pt_shape + (1, 1):
        return "unsqueeze(2,3)"  # a Linear ported as a 1x1 Conv2d
    if allow_transpose and len(pt_shape) == 2 and ms_shape == pt_shape[::-1]:
        return "transpose"
    return None


def match_weights(pt: ParameterListing, ms: ParameterListing) -> MatchResult:
    """Pair every torch entry of pt with a MindSpore parameter of ms (names, then rules, then structure)."""
    module_types = {m.path: m.rule_type or m.type for m in pt.modules}
    rule_names = {p.name: layer_rules.ms_name_from_pt(p, module_types)[0] for p in pt.parameters}
    ms_by_name = {p.name: p for p in ms.parameters}
    taken: set[str] = set()
    pairings: dict[str, Pairing] = {}

    def pair(p: ParameterSpec, target: ParameterSpec, how: str, allow_transpose: bool = False) -> bool:
        transform = shape_transform(p.shape, target.shape, allow_transpose)
        if transform is None or target.name in taken or p.dtype != target.dtype:
            return False
        pairings[p.name] = Pairing(p.name, target.name, transform, how)
        taken.add(target.name)
        return True

    for how, name_of in (("name", lambda p: p.name), ("rules", lambda p: rule_names[p.name])):
        for p in pt.parameters:
            target = ms_by_name.get(name_of(p))
            if p.name not in pairings and target is not None:
                pair(p, target, how)
    _match_structure(pt, ms, pairings, taken, pair)
    unmatched_pt = tuple(p.name for p in pt.parameters
                         if p.name not in pairings and not layer_rules.is_optional_entry(p.name))
    unmatched_ms = tuple(p.name for p in ms.parameters if p.name not in taken)
    ordered = tuple(pairings[p.name] for p in pt.parameters if p.name in pairings)
    return MatchResult(ordered, unmatched_pt, unmatched_ms, _renames(ordered, pt, ms), rule_names)


def _by_module(params: Sequence[ParameterSpec], skip) -> OrderedDict[str, list[ParameterSpec]]:
    grouped: OrderedDict[str, list[ParameterSpec]] = OrderedDict()
    for p in params:
        if not skip(p):
            grouped.setdefault(p.module_path, []).append(p)
    return grouped


def _match_structure(pt: ParameterListing, ms: ParameterListing, pairings: dict, taken: set, pair) -> None:
    """Stage 3: align the modules whose parameters are still unpaired, in registration order, by shapes.

    Normalization layers are aligned among themselves (when both sides name their types): a HuggingFace layer registers its norms after its
    attention and MLP, timm and mindcv before, so one sequence of all modules would shift every norm by a
    block. One module may also align with a run of modules on the other side whose tensors, joined along
    axis 0, are its own (a fused qkv Dense and separate query/key/value Linears): a concat or a split.
    """
    pt_modules = _by_module(pt.parameters, lambda p: p.name in pairings or layer_rules.is_optional_entry(p.name))
    ms_modules = _by_module(ms.parameters, lambda p: p.name in taken)
    by_kind = any(map(_is_norm, pt_modules.values())) and any(map(_is_norm, ms_modules.values()))
    for norms in ((True, False) if by_kind else (None,)):  # None: one sequence (a side names no norm types)
        pt_items = [params for params in pt_modules.values() if norms is None or _is_norm(params) == norms]
        ms_items = [params for params in ms_modules.values() if norms is None or _is_norm(params) == norms]
        paths = ([p[0].module_path for p in pt_items], [p[0].module_path for p in ms_items])
        for i, j, pt_run, ms_run in _align(pt_items, ms_items, paths):
            if pt_run == ms_run == 1:
                _pair_inside(pt_items[i], ms_items[j], pair)
            elif pt_run == 1:
                _record_fused("pt", pt_items[i], ms_items[j:j + ms_run], pairings, taken)
            else:
                _record_fused("ms", ms_items[j], pt_items[i:i + pt_run], pairings, taken)


def _is_norm(params: list[ParameterSpec]) -> bool:
    return "norm" in (params[0].module_rule_type or params[0].module_type or "").lower()


def _fits(pt_params: list[ParameterSpec], ms_params: list[ParameterSpec]) -> bool:
    """Whether two modules' unpaired parameters can pair one to one (same count, compatible shapes in order)."""
    if len(pt_params) != len(ms_params):
        return False
    left = list(ms_params)
    for p in pt_params:
        match = next((q for q in left if shape_transform(p.shape, q.shape, True) and p.dtype == q.dtype), None)
        if match is None:
            return False
        left.remove(match)
    return True


MAX_PARTS = 4  # the longest run of parts one fused tensor is looked for in (q, k, v; gate, up)


def _align(pt_items: list, ms_items: list, paths: tuple[list[str], list[str]]) -> list[tuple[int, int, int, int]]:
    """The order-preserving alignment of modules with the most tensors paired (then the most similar names):
    (pt index, ms index, pt run, ms run), one run being 1 and the other the number of parts of a fused tensor."""
    n, m = len(pt_items), len(ms_items)
    if not n or not m:
        return []
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    move: dict[tuple[int, int], tuple[int, int]] = {}
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best, step = score[i + 1][j], (1, 0)
            if score[i][j + 1] > best:
                best, step = score[i][j + 1], (0, 1)
            skipping = True
            for pt_run, ms_run in _moves(pt_items, ms_items, i, j):
                gain = max(pt_run, ms_run) + _similarity(paths[0][i], paths[1][j]) + score[i + pt_run][j + ms_run]
                if gain > best or (skipping and gain == best):  # a match wins a tie with skipping
                    best, step, skipping = gain, (pt_run, ms_run), False
            score[i][j] = best
            move[(i, j)] = step
    matches, i, j = [], 0, 0
    while i < n and j < m:
        pt_run, ms_run = move[(i, j)]
        if pt_run and ms_run:
            matches.append((i, j, pt_run, ms_run))
        i, j = i + pt_run, j + ms_run
    return matches


def _moves(pt_items: list, ms_items: list, i: int, j: int):
    """The matches that may start at (i, j): one to one, and one fused tensor to a run of its parts."""
    if _fits(pt_items[i], ms_items[j]):
        yield 1, 1
    run = _joining_run(pt_items[i], ms_items, j)
    if run:
        yield 1, run
    run = _joining_run(ms_items[j], pt_items, i)
    if run:
        yield run, 1


def _joining_run(fused: list[ParameterSpec], parts_list: list[list[ParameterSpec]], first: int) -> int:
    """The length (2 or more) of the run of modules from ``first`` whose same-named tensors join into fused's, or 0."""
    locals_ = sorted(p.local_name for p in fused)
    total = {p.local_name: 0 for p in fused}
    for length in range(1, min(MAX_PARTS, len(parts_list) - first) + 1):
        by_local = {p.local_name: p for p in parts_list[first + length - 1]}
        if sorted(by_local) != locals_:
            return 0
        for p in fused:
            q = by_local[p.local_name]
            if q.dtype != p.dtype or len(q.shape) != len(p.shape) or tuple(q.shape[1:]) != tuple(p.shape[1:]):
                return 0
            total[p.local_name] += q.shape[0]
        left = [p.shape[0] - total[p.local_name] for p in fused]
        if all(n == 0 for n in left):
            return length if length >= 2 else 0
        if any(n < 0 for n in left):
            return 0
    return 0


def _record_fused(fused_side: str, fused: list[ParameterSpec], run: list[list[ParameterSpec]], pairings: dict,
                  taken: set) -> None:
    """Pair a fused module's tensors with its parts': a concat of torch parts, or a split of a torch tensor."""
    for p in fused:
        parts = [next(q for q in module if q.local_name == p.local_name) for module in run]
        if fused_side == "ms":  # torch parts joined into one MindSpore tensor
            for q in parts:
                pairings[q.name] = Pairing(q.name, p.name, "concat(0)", "structure")
            taken.add(p.name)
        else:  # one torch tensor split into MindSpore parts
            names = tuple(q.name for q in parts)
            sizes = [q.shape[0] for q in parts]
            transform = "split(0)" if len(set(sizes)) == 1 else f"split(0,{','.join(map(str, sizes))})"
            pairings[p.name] = Pairing(p.name, names[0], transform, "structure", names)
            taken.update(names)


def _similarity(pt_path: str, ms_path: str) -> float:
    """A tie-breaker below one pairing: the share of path components the two module paths have in common."""
    a, b = pt_path.split("."), ms_path.split(".")
    common = sum((Counter(a) & Counter(b)).values())
    return 0.5 * common / max(len(a), len(b))


def _pair_inside(pt_params: list[ParameterSpec], ms_params: list[ParameterSpec], pair) -> None:
    """Pair the parameters of two aligned modules: local names, then the rules' local names, then order."""
    by_local = {q.local_name: q for q in ms_params}
    rest = []
    for p in pt_params:
        renamed = layer_rules.PARAM_RENAMES.get(p.module_rule_type or p.module_type, {}).get(p.local_name)
        target = by_local.get(p.local_name) or (by_local.get(renamed) if renamed else None)
        if target is None or not pair(p, target, "structure", True):
            rest.append(p)
    for p in rest:
        for q in ms_params:
            if pair(p, q, "structure", True):
                break


def _renames(pairings: Sequence[Pairing], pt: ParameterListing, ms: ParameterListing) -> tuple:
    """Module path renames (torch prefix -> MindSpore prefix) behind the structure pairings, most used first."""
    pt_paths = {p.name: p.module_path for p in pt.parameters}
    ms_paths = {p.name: p.module_path for p in ms.parameters}
    seen: Counter = Counter()
    for p in pairings:
        if p.how != "structure":
            continue
        a, b = pt_paths[p.pt_name].split("."), ms_paths[p.ms_name].split(".")
        while a and b and a[-1] == b[-1]:  # drop the common tail: what differs is the prefix
            a, b = a[:-1], b[:-1]
        if a != b:
            seen[(".".join(a), ".".join(b))] += 1
    return tuple((a, b, n) for (a, b), n in seen.most_common())
