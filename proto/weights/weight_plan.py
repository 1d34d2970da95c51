"""Plans: a weight map checked against the torch entries and the MindSpore net it will feed.

Every unmapped, duplicated or mismatched name is listed in one WeightMapError, never silently
skipped; entries the target has no place for (num_batches_tracked) are dropped by name.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proto.codec import NamedArray, TensorSpec
from proto.errors import WeightMapError
from proto.weights import layer_rules
from proto.weights.auto_match import match_weights
from proto.weights.conversion import Joiner, ms_tensor_from_pt
from proto.weights.map_file import WeightMap
from proto.weights.transforms import TransformError, join_of, resolved_split, transform_shape

if TYPE_CHECKING:  # the listing types only: weights need no worker runtime
    from proto.worker.interface import ParameterListing

__all__ = ["MAP_STRATEGIES", "WeightMapping", "WeightPlan", "map_for", "names_weight_map", "plan_against",
           "plan_from_listings", "rules_weight_map"]


@dataclass(frozen=True)
class WeightMapping:
    pt_name: str
    ms_name: str
    transform: str = "identity"


@dataclass(frozen=True)
class WeightPlan:
    mappings: tuple[WeightMapping, ...]
    dropped: tuple[str, ...]  # torch entries the target has no place for (num_batches_tracked)
    missing_bias: tuple[str, ...] = ()  # torch biases of layers whose MindSpore port has none (not copied)
    how: str = ""  # how the map was found (the auto matcher's summary: pairings by stage, renames seen)
    kept: tuple[str, ...] = ()  # frozen MindSpore parameters nothing in torch's state feeds: they keep their values

    @property
    def pt_names(self) -> list[str]:
        """The torch entries to stream, each once (a split entry feeds several mappings)."""
        return list(dict.fromkeys(m.pt_name for m in self.mappings))

    def unchanged(self) -> dict[str, str]:
        """torch name -> MindSpore name of each entry that feeds one parameter as it is (identity): its bytes may
        be written straight into that parameter."""
        feeds = Counter(m.pt_name for m in self.mappings)
        return {m.pt_name: m.ms_name for m in self.mappings if m.transform == "identity" and feeds[m.pt_name] == 1}

    def convert(self, pt_tensors: Iterable[NamedArray]) -> Iterator[NamedArray]:
        """Rename and transform streamed torch tensors into MindSpore tensors, one at a time (the parts of a
        joined tensor are held until its last part arrives)."""
        by_pt: dict[str, list[WeightMapping]] = {}
        parts: dict[str, list[WeightMapping]] = {}
        for m in self.mappings:
            by_pt.setdefault(m.pt_name, []).append(m)
            join = join_of(m.transform)[1]
            if join is not None and join.op == "into":
                parts.setdefault(m.ms_name, []).append(m)
        joiner = Joiner({ms: [m.pt_name for m in sorted(group, key=lambda m: join_of(m.transform)[1].args[1])]
                         for ms, group in parts.items()})
        for tensor in pt_tensors:
            for mapping in by_pt[tensor.name]:
                head, join = join_of(mapping.transform)
                if join is not None and join.op == "into":
                    joined = joiner.add(mapping.ms_name, tensor.name, ms_tensor_from_pt(tensor, mapping.ms_name, head),
                                        join.args[0])
                    if joined is not None:
                        yield joined
                else:
                    yield ms_tensor_from_pt(tensor, mapping.ms_name, mapping.transform)


def plan_against(pt_specs: list[TensorSpec], weight_map: WeightMap, ms_specs: list[TensorSpec] | None,
                 missing_bias_ok: bool = False) -> WeightPlan:
    """Check weight_map over the torch entries (and, when given, the MindSpore net's parameters).

    ``missing_bias_ok``: a torch ``*.bias`` whose MindSpore layer exists (its weight is mapped) but has no
    bias is left out and listed in ``missing_bias`` instead of refused: comparing live nets then shows
    the difference it makes (a Conv2d ported without ``has_bias=True``) rather than stopping.
    Splits become one ``slice`` mapping per part, concats one ``into`` mapping per torch part.
    """
    problems = _Problems()
    pt_names = {s.name for s in pt_specs}
    problems.add("torch entries the map lacks", *(s.name for s in pt_specs if s.name not in weight_map.name_map))
    problems.add("map entries the torch weights lack", *(name for name in weight_map.name_map if name not in pt_names))
    ms_by_name = {s.name: s for s in ms_specs} if ms_specs is not None else None
    mappings: list[WeightMapping] = []
    dropped: list[str] = []
    missing_bias: list[str] = []
    targets: dict[str, str] = {}
    joined: dict[str, list[tuple[TensorSpec, str, int]]] = {}  # MindSpore name -> (torch part, its steps, axis)

    def target(spec: TensorSpec, ms_name: str, transform: str) -> None:
        if ms_name in targets:
            problems.add("two torch entries map to one ms name",
                         f"{targets[ms_name]!r} and {spec.name!r} -> {ms_name!r} (join them with concat(axis))")
            return
        targets[ms_name] = spec.name
        if ms_by_name is not None:
            ms_spec = ms_by_name.get(ms_name)
            if ms_spec is None:
                if layer_rules.is_optional_entry(spec.name):
                    dropped.append(spec.name)
                    return
                if missing_bias_ok and _layer_without_bias(spec.name, weight_map, ms_by_name):
                    missing_bias.append(spec.name)
                    return
                problems.add("torch entries mapped to names the ms net lacks", f"{spec.name!r} -> {ms_name!r}")
                return
            try:
                shape = transform_shape(transform, spec.shape)
            except TransformError as exc:
                problems.add("transforms that do not fit", f"{spec.name!r} -> {ms_name!r}: {exc}")
                return
            if tuple(shape) != tuple(ms_spec.shape):
                after = f" (after {transform})" if transform != "identity" else ""
                problems.add("shapes that differ", f"pt {spec.name!r} {list(spec.shape)} -> ms {ms_name!r} needs "
                                                   f"{list(ms_spec.shape)}{after}")
            elif spec.dtype != ms_spec.dtype:
                problems.add("dtypes that differ", f"pt {spec.name!r} is {spec.dtype}, ms {ms_name!r} is {ms_spec.dtype}")
        mappings.append(WeightMapping(spec.name, ms_name, transform))

    for spec in pt_specs:
        ms_names = weight_map.targets(spec.name)
        if not ms_names:
            continue
        transform = weight_map.value_map.get(spec.name, "identity")
        head, join = join_of(transform)
        if join is not None and join.op == "split":
            try:
                parts = resolved_split(transform, spec.shape, len(ms_names))
            except TransformError as exc:
                problems.add("transforms that do not fit", f"{spec.name!r} -> {ms_names}: {exc}")
                continue
            for ms_name, part in zip(ms_names, parts):
                target(spec, ms_name, part)
        elif join is not None and join.op == "concat":
            joined.setdefault(ms_names[0], []).append((spec, head, join.args[0]))
        else:
            target(spec, ms_names[0], transform)
    for ms_name, parts in joined.items():
        mappings.extend(_joined_mappings(ms_name, parts, targets, ms_by_name, problems))
    kept: list[str] = []
    if ms_by_name is not None:
        unfed = [name for name in ms_by_name if name not in targets]
        # a frozen MindSpore parameter torch keeps as a non-persistent buffer (mindone's rotary inv_freq): computed
        # the same way on both sides, so it keeps its own value (and is named) instead of stopping the comparison
        kept = [name for name in unfed if missing_bias_ok and not getattr(ms_by_name[name], "trainable", True)
                and not layer_rules.is_optional_entry(name)]
        unfed = [name for name in unfed if name not in kept]
        extra_bias = [name for name in unfed if _extra_bias(name, targets)]
        problems.add("MindSpore layers with a bias their torch layer lacks", *extra_bias,
                     fix="pass has_bias=False in the port")
        problems.add("ms parameters no pt entry maps to", *(name for name in unfed if name not in extra_bias))
    if problems:
        raise WeightMapError(f"cannot map pt weights onto the ms side: {problems}; align the attribute names, "
                             "or give a weight map (start from `msparity weight-map`)")
    return WeightPlan(tuple(mappings), tuple(dropped), tuple(missing_bias), kept=tuple(kept))


def _joined_mappings(ms_name: str, parts: list[tuple[TensorSpec, str, int]], targets: dict[str, str],
                     ms_by_name: dict[str, TensorSpec] | None, problems: _Problems) -> list[WeightMapping]:
    """One ``into(axis,start,stop)`` mapping per torch part of a concat, checked against the joined tensor."""
    names = [spec.name for spec, _, _ in parts]
    if ms_name in targets:
        problems.add("two torch entries map to one ms name", f"{targets[ms_name]!r} and {names} -> {ms_name!r}")
        return []
    targets[ms_name] = names[0]
    try:
        shapes = [transform_shape(head, spec.shape) for spec, head, _ in parts]
    except TransformError as exc:
        problems.add("transforms that do not fit", f"{names} -> {ms_name!r}: {exc}")
        return []
    axis = parts[0][2] % max(len(shapes[0]), 1)
    rest = {tuple(s[:axis]) + tuple(s[axis + 1:]) for s in shapes}
    if len(rest) != 1 or any(len(s) != len(shapes[0]) for s in shapes) or len({p[2] for p in parts}) != 1:
        problems.add("parts that cannot be joined", f"{names} {[list(s) for s in shapes]} along axis {axis} -> {ms_name!r}")
        return []
    joined_shape = list(shapes[0])
    joined_shape[axis] = sum(s[axis] for s in shapes)
    ms_spec = ms_by_name.get(ms_name) if ms_by_name is not None else None
    if ms_by_name is not None and ms_spec is None:
        problems.add("torch entries mapped to names the ms net lacks", f"{names} -> {ms_name!r}")
        return []
    if ms_spec is not None and tuple(ms_spec.shape) != tuple(joined_shape):
        problems.add("shapes that differ", f"pt {names} joined along axis {axis} make {joined_shape}, ms {ms_name!r} "
                                           f"needs {list(ms_spec.shape)}")
        return []
    mappings, start = [], 0
    for (spec, head, _), shape in zip(parts, shapes):
        prefix = "" if head == "identity" else head + "|"
        mappings.append(WeightMapping(spec.name, ms_name, f"{prefix}into({axis},{start},{start + shape[axis]})"))
        start += shape[axis]
    return mappings


class _Problems:
    """Problems grouped by kind; the message gives each kind's count and its first few (a map of a
    densenet can have hundreds: one line must stay readable)."""

    def __init__(self):
        self._by_kind: dict[str, list[str]] = {}
        self._fixes: dict[str, str] = {}

    def add(self, kind: str, *items: str, fix: str = "") -> None:
        if items:
            self._by_kind.setdefault(kind, []).extend(items)
            if fix:
                self._fixes[kind] = fix

    def __bool__(self) -> bool:
        return bool(self._by_kind)

    def __str__(self) -> str:
        return "; ".join(f"{kind} ({len(items)}): {shown(items)}" + (f" ({self._fixes[kind]})" if kind in self._fixes else "")
                         for kind, items in self._by_kind.items())


def shown(items: list[str], most: int = 5) -> str:
    """The first few items, comma-separated, with a count of the rest."""
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def _extra_bias(ms_name: str, targets: dict[str, str]) -> bool:
    """A MindSpore ``*.bias`` whose cell's weight is fed from torch: torch's layer has no bias there."""
    owner, _, local = ms_name.rpartition(".")
    return local == "bias" and (f"{owner}.weight" if owner else "weight") in targets


def _layer_without_bias(pt_name: str, weight_map: WeightMap, ms_by_name: dict[str, TensorSpec]) -> bool:
    owner, _, local = pt_name.rpartition(".")
    weight = weight_map.name_map.get(f"{owner}.weight" if owner else "weight")
    return local == "bias" and weight is not None and weight in ms_by_name


def rules_weight_map(pt: ParameterListing, prefix: str | None = None) -> WeightMap:
    """The layer-rule map of a torch net's listing."""
    return WeightMap(*layer_rules.weight_map_from_listing(pt, prefix))


MAP_STRATEGIES = ("auto", "rules", "names")


def names_weight_map(pt: ParameterListing) -> WeightMap:
    """Every torch entry under its own name (MSAdapter / mindtorch ports, TroubleShooter's auto_conv_ckpt=2)."""
    return WeightMap({p.name: p.name for p in pt.parameters}, {})


def map_for(pt: ParameterListing, ms: ParameterListing, strategy: str = "auto") -> tuple[WeightMap, str]:
    """The weight map a strategy makes for two live nets, and a line saying how it was found.

    ``auto``: names, then the layer rules, then structure (proto/weights/auto_match.py);
    ``rules``: the layer rules alone (TroubleShooter's get_weight_map); ``names``: every torch entry
    under its own name (MSAdapter / mindtorch ports, TroubleShooter's auto_conv_ckpt=2).
    """
    if strategy == "rules":
        return rules_weight_map(pt), "weights mapped by the layer rules"
    if strategy == "names":
        return names_weight_map(pt), "weights mapped by their own names"
    if strategy != "auto":
        raise WeightMapError(f"unknown weight-map strategy {strategy!r}; known: {', '.join(MAP_STRATEGIES)}")
    result = match_weights(pt, ms)
    return result.weight_map(), result.summary()


def plan_from_listings(pt: ParameterListing, ms: ParameterListing, weight_map: WeightMap | None = None,
                       strategy: str = "auto") -> WeightPlan:
    """Plan streaming a live torch net into a live MindSpore net: the map given, else one made by ``strategy``.

    A torch bias the MindSpore layer lacks is left out (``missing_bias``), so the comparison shows it.
    When the map was made here and does not fit, the error says how far the matcher got.
    """
    how = "weights mapped by the map given"
    if weight_map is None:
        weight_map, how = map_for(pt, ms, strategy)
    try:
        plan = plan_against(list(pt.parameters), weight_map, list(ms.parameters), missing_bias_ok=True)
    except WeightMapError as exc:
        raise WeightMapError(f"{exc} ({how})") from None
    return dataclasses.replace(plan, how=how)
