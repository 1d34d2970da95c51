"""Plan how PyTorch state flows into a MindSpore net: names, value transforms, checks.

``plan_from_listings`` maps every torch state entry through the layer rules, then checks the plan
against the MindSpore net's own listing; every unmapped, duplicated or mismatched name is listed
in one WeightMapError, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from coordinator import layer_rules
from coordinator.errors import WeightMapError
from proto.adapter import ParameterListing, ParameterSpec
from proto.codec import NamedArray

MAX_LISTED = 12


@dataclass(frozen=True)
class WeightMapping:
    pt_name: str
    ms_name: str
    transform: str = "identity"


@dataclass(frozen=True)
class WeightPlan:
    mappings: tuple[WeightMapping, ...]
    dropped: tuple[str, ...]  # torch entries with no MindSpore counterpart (num_batches_tracked)

    @property
    def pt_names(self) -> list[str]:
        return [m.pt_name for m in self.mappings]

    def convert(self, pt_tensors: Iterable[NamedArray]) -> Iterator[NamedArray]:
        """Rename and transform streamed torch tensors into MindSpore tensors, one at a time."""
        by_pt = {m.pt_name: m for m in self.mappings}
        for tensor in pt_tensors:
            mapping = by_pt[tensor.name]
            array = layer_rules.TRANSFORMS[mapping.transform](tensor.array)
            yield NamedArray(mapping.ms_name, array, tensor.dtype)


def ms_module_path(pt_path: str, module_types: dict[str, str]) -> str:
    """Rename child attributes of containers whose MindSpore port names them differently."""
    parts = pt_path.split(".") if pt_path else []
    renamed = []
    for index, part in enumerate(parts):
        parent_type = module_types.get(".".join(parts[:index]), "")
        renamed.append(layer_rules.CHILD_RENAMES.get(parent_type, {}).get(part, part))
    return ".".join(renamed)


def rule_for(param: ParameterSpec, module_types: dict[str, str]) -> WeightMapping | None:
    """The layer-rule mapping of one torch state entry; None when it is dropped."""
    local = param.local_name
    ms_local = layer_rules.PARAM_RENAMES.get(param.module_type, {}).get(local, local)
    if ms_local is layer_rules.DROP:
        return None
    path = ms_module_path(param.module_path, module_types)
    transform = layer_rules.VALUE_TRANSFORMS.get((param.module_type, local), "identity")
    return WeightMapping(param.name, f"{path}.{ms_local}" if path else ms_local, transform)


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def plan_from_listings(pt: ParameterListing, ms: ParameterListing) -> WeightPlan:
    """Map every torch entry by the layer rules and check the result against the MindSpore net."""
    module_types = {m.path: m.type for m in pt.modules}
    ms_specs = {p.name: p for p in ms.parameters}
    mappings: list[WeightMapping] = []
    dropped: list[str] = []
    problems: list[str] = []
    targets: dict[str, str] = {}
    for param in pt.parameters:
        mapping = rule_for(param, module_types)
        if mapping is None:
            dropped.append(param.name)
            continue
        ms_param = ms_specs.get(mapping.ms_name)
        if mapping.ms_name in targets:
            problems.append(f"pt {targets[mapping.ms_name]!r} and {param.name!r} both map to ms {mapping.ms_name!r}")
        elif ms_param is None:
            problems.append(f"pt {param.name!r} ({param.module_type}) maps to ms {mapping.ms_name!r}, which the ms net lacks")
        else:
            shape = layer_rules.SHAPE_TRANSFORMS[mapping.transform](param.shape)
            if tuple(shape) != tuple(ms_param.shape):
                problems.append(
                    f"pt {param.name!r} {list(param.shape)} -> ms {mapping.ms_name!r} needs {list(ms_param.shape)}"
                    + (f" (after {mapping.transform})" if mapping.transform != "identity" else "")
                )
            elif param.dtype != ms_param.dtype:
                problems.append(f"pt {param.name!r} is {param.dtype}, ms {mapping.ms_name!r} is {ms_param.dtype}")
        targets.setdefault(mapping.ms_name, param.name)
        mappings.append(mapping)
    unfed = [name for name in ms_specs if name not in targets]
    if unfed:
        problems.append(f"ms parameters no pt entry maps to: {_listed(unfed)}")
    if problems:
        raise WeightMapError(
            f"cannot map pt weights onto the ms net ({len(problems)} problem(s)): {_listed(problems)}; "
            "align the attribute names, or give a weight map"
        )
    return WeightPlan(tuple(mappings), tuple(dropped))
