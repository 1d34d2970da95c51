"""Converting torch tensors into MindSpore tensors by a weight map, one tensor at a time.

Shared by coordinator.convert_weight (writes a .ckpt) and ms_worker.convert_weight_and_load
(loads into a live net); neither needs torch. Checks and status strings follow TroubleShooter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError
from proto.weights import transforms
from proto.weights.map_file import WeightMap, listed

CONVERSION_COLUMNS = ("Parameter name of torch", "Parameter name of MindSpore", "Conversion status",
                      "Parameter shape of torch", "Parameter shape of MindSpore")


@dataclass(frozen=True)
class ConversionRow:
    """One converted tensor, as the conversion table shows it."""

    pt_name: str
    ms_name: str
    status: str
    pt_shape: tuple[int, ...]
    ms_shape: tuple[int, ...]

    def cells(self) -> tuple[str, ...]:
        return self.pt_name, self.ms_name, self.status, str(tuple(self.pt_shape)), str(tuple(self.ms_shape))


def conversion_status(pt_name: str, ms_name: str, value_converted: bool) -> str:
    """TroubleShooter's status: "Consistent", "weight->gamma", "Name converted", "Value converted", or "A; B"."""
    pt_prefix, _, pt_suffix = pt_name.rpartition(".")
    ms_prefix, _, ms_suffix = ms_name.rpartition(".")
    if pt_name == ms_name:
        return "Value converted" if value_converted else "Consistent"
    name_part = f"{pt_suffix}->{ms_suffix}" if pt_prefix == ms_prefix and pt_suffix != ms_suffix else "Name converted"
    return f"{name_part}; Value converted" if value_converted else name_part


def check_keys(weight_map: WeightMap, pt_specs: list[TensorSpec], source: str) -> None:
    """The map's keys must be exactly the weights' names (both lists named in one error otherwise)."""
    pt_names = [s.name for s in pt_specs]
    unwanted = sorted(set(weight_map.name_map) - set(pt_names))
    missing = [name for name in pt_names if name not in weight_map.name_map]
    if unwanted or missing:
        parts = [f"the weight map and {source} disagree (make the map with get_weight_map on the same model)"]
        if unwanted:
            parts.append(f"map entries not in the weights: {listed(unwanted)}")
        if missing:
            parts.append(f"weights missing from the map: {listed(missing)}")
        raise MsparityError("; ".join(parts))


def ms_tensor_from_pt(tensor: NamedArray, ms_name: str, transform: str) -> NamedArray:
    """One torch tensor under its MindSpore name, its values transformed (a view where possible)."""
    return NamedArray(ms_name, transforms.apply_transform(transform, tensor.array), tensor.dtype)


class Joiner:
    """The torch parts of joined MindSpore tensors, held until the last part arrives, then concatenated."""

    def __init__(self, parts: dict[str, list[str]]):
        self._parts = parts  # MindSpore name -> its torch parts, in the order they are joined
        self._held: dict[str, dict[str, NamedArray]] = {}

    def add(self, ms_name: str, pt_name: str, part: NamedArray, axis: int) -> NamedArray | None:
        """Hold one part; the joined tensor once all of ms_name's parts are in, else None."""
        held = self._held.setdefault(ms_name, {})
        held[pt_name] = part
        order = self._parts[ms_name]
        if len(held) < len(order):
            return None
        del self._held[ms_name]
        joined = np.concatenate([held[name].array for name in order], axis=axis)
        return NamedArray(ms_name, joined, part.dtype)


def convert_tensors(weight_map: WeightMap, tensors: Iterable[NamedArray], rows: list[ConversionRow]) -> Iterator[NamedArray]:
    """Rename and transform each torch tensor (split or joined where the map says); append table rows as it goes."""
    joiner = Joiner(weight_map.concat_groups())
    for tensor in tensors:
        ms_names = weight_map.targets(tensor.name)
        transform = weight_map.value_map.get(tensor.name, "identity")
        head, join = transforms.join_of(transform)
        if join is not None and join.op == "split":
            parts = transforms.resolved_split(transform, tensor.shape, len(ms_names))
        else:
            parts = [head]
        for ms_name, part_transform in zip(ms_names, parts):
            converted = ms_tensor_from_pt(tensor, ms_name, part_transform)
            rows.append(ConversionRow(tensor.name, ms_name, conversion_status(tensor.name, ms_name, transform != "identity"),
                                      tensor.shape, converted.shape))
            if join is not None and join.op == "concat":
                converted = joiner.add(ms_name, tensor.name, converted, join.args[0])
            if converted is not None:
                yield converted


def converted_specs(weight_map: WeightMap, specs: Iterable[TensorSpec]) -> list[TensorSpec]:
    """The MindSpore tensors convert_tensors yields for torch tensors of these specs, in the order it yields them."""
    groups = weight_map.concat_groups()
    seen: dict[str, list[tuple[int, ...]]] = {}
    out = []
    for spec in specs:
        ms_names = weight_map.targets(spec.name)
        transform = weight_map.value_map.get(spec.name, "identity")
        head, join = transforms.join_of(transform)
        if join is not None and join.op == "split":
            for ms_name, part in zip(ms_names, transforms.resolved_split(transform, spec.shape, len(ms_names))):
                out.append(TensorSpec(ms_name, spec.dtype, transforms.transform_shape(part, spec.shape)))
        elif join is not None and join.op == "concat":
            shapes = seen.setdefault(ms_names[0], [])
            shapes.append(transforms.transform_shape(head, spec.shape))
            if len(shapes) == len(groups[ms_names[0]]):
                joined = list(shapes[0])
                joined[join.args[0]] = sum(shape[join.args[0]] for shape in shapes)
                out.append(TensorSpec(ms_names[0], spec.dtype, tuple(joined)))
        else:
            out.append(TensorSpec(ms_names[0], spec.dtype, transforms.transform_shape(transform, spec.shape)))
    return out


def text_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A plain bordered table (for worker hosts, which have no rich)."""
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    line = lambda cells: "|" + "|".join(f" {cell:^{w}} " for cell, w in zip(cells, widths)) + "|"  # noqa: E731
    width = len(rule) - 2
    return "\n".join([f"+{'-' * width}+", f"|{title:^{width}}|", rule, line(columns), rule,
                      *(line(r) for r in rows), rule])
