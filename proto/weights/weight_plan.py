"""Plans: a weight map checked against the torch entries and the MindSpore net it will feed.

Every unmapped, duplicated or mismatched name is listed in one WeightMapError, never silently
skipped; entries the target has no place for (num_batches_tracked) are dropped by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proto.codec import NamedArray, TensorSpec
from proto.errors import WeightMapError
from proto.weights import layer_rules
from proto.weights.conversion import ms_tensor_from_pt
from proto.weights.map_file import WeightMap, listed

if TYPE_CHECKING:  # the listing types only: weights need no worker runtime
    from proto.worker.interface import ParameterListing

__all__ = ["WeightMapping", "WeightPlan", "plan_against", "plan_from_listings", "rules_weight_map"]


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

    @property
    def pt_names(self) -> list[str]:
        return [m.pt_name for m in self.mappings]

    def convert(self, pt_tensors: Iterable[NamedArray]) -> Iterator[NamedArray]:
        """Rename and transform streamed torch tensors into MindSpore tensors, one at a time."""
        by_pt = {m.pt_name: m for m in self.mappings}
        for tensor in pt_tensors:
            mapping = by_pt[tensor.name]
            yield ms_tensor_from_pt(tensor, mapping.ms_name, mapping.transform)


def plan_against(pt_specs: list[TensorSpec], weight_map: WeightMap, ms_specs: list[TensorSpec] | None,
                 missing_bias_ok: bool = False) -> WeightPlan:
    """Check weight_map over the torch entries (and, when given, the MindSpore net's parameters).

    ``missing_bias_ok``: a torch ``*.bias`` whose MindSpore layer exists (its weight is mapped) but has no
    bias is left out and listed in ``missing_bias`` instead of refused: comparing live nets then shows
    the difference it makes (a Conv2d ported without ``has_bias=True``) rather than stopping.
    """
    problems: list[str] = []
    pt_names = {s.name for s in pt_specs}
    unmapped = [s.name for s in pt_specs if s.name not in weight_map.name_map]
    if unmapped:
        problems.append(f"torch entries the map lacks: {listed(unmapped)}")
    unwanted = [name for name in weight_map.name_map if name not in pt_names]
    if unwanted:
        problems.append(f"map entries the torch weights lack: {listed(unwanted)}")
    ms_by_name = {s.name: s for s in ms_specs} if ms_specs is not None else None
    mappings: list[WeightMapping] = []
    dropped: list[str] = []
    missing_bias: list[str] = []
    targets: dict[str, str] = {}
    for spec in pt_specs:
        ms_name = weight_map.name_map.get(spec.name)
        if ms_name is None:
            continue
        transform = weight_map.value_map.get(spec.name, "identity")
        if ms_name in targets:
            problems.append(f"pt {targets[ms_name]!r} and {spec.name!r} both map to ms {ms_name!r}")
            continue
        targets[ms_name] = spec.name
        if ms_by_name is not None:
            ms_spec = ms_by_name.get(ms_name)
            if ms_spec is None:
                if layer_rules.is_optional_entry(spec.name):
                    dropped.append(spec.name)
                    continue
                if missing_bias_ok and _layer_without_bias(spec.name, weight_map, ms_by_name):
                    missing_bias.append(spec.name)
                    continue
                problems.append(f"pt {spec.name!r} maps to ms {ms_name!r}, which the ms net lacks")
                continue
            shape = layer_rules.SHAPE_TRANSFORMS[transform](spec.shape)
            if tuple(shape) != tuple(ms_spec.shape):
                after = f" (after {transform})" if transform != "identity" else ""
                problems.append(f"pt {spec.name!r} {list(spec.shape)} -> ms {ms_name!r} needs {list(ms_spec.shape)}{after}")
            elif spec.dtype != ms_spec.dtype:
                problems.append(f"pt {spec.name!r} is {spec.dtype}, ms {ms_name!r} is {ms_spec.dtype}")
        mappings.append(WeightMapping(spec.name, ms_name, transform))
    if ms_by_name is not None:
        unfed = [name for name in ms_by_name if name not in targets]
        extra_bias = [name for name in unfed if _extra_bias(name, targets)]
        unfed = [name for name in unfed if name not in extra_bias]
        if extra_bias:
            problems.append(f"MindSpore layers with a bias their torch layer lacks: {listed(extra_bias)} "
                            "(pass has_bias=False in the port)")
        if unfed:
            problems.append(f"ms parameters no pt entry maps to: {listed(unfed)}")
    if problems:
        raise WeightMapError(
            f"cannot map pt weights onto the ms side ({len(problems)} problem(s)): {'; '.join(problems)}; "
            "align the attribute names, or give a weight map"
        )
    return WeightPlan(tuple(mappings), tuple(dropped), tuple(missing_bias))


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


def plan_from_listings(pt: ParameterListing, ms: ParameterListing, weight_map: WeightMap | None = None) -> WeightPlan:
    """Plan streaming a live torch net into a live MindSpore net (layer rules unless a map is given).

    A torch bias the MindSpore layer lacks is left out (``missing_bias``), so the comparison shows it.
    """
    weight_map = weight_map or rules_weight_map(pt)
    return plan_against(list(pt.parameters), weight_map, list(ms.parameters), missing_bias_ok=True)
