"""compare_ms_ckpt / compare_pth_and_ckpt: two weight files, shapes then values (no framework).

Rows follow TroubleShooter: the original file's order; a name only one side has gets a row with
None on the other side (target-only rows last). Values use our metrics (mean and max abs diff over
all elements; TroubleShooter averaged over the unequal ones only).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from coordinator import metrics
from coordinator.metrics import TensorComparison
from coordinator.weights.convert import resolve_weight_map
from proto.errors import MsparityError
from proto.weights.conversion import check_keys, convert_tensors
from proto.weights.layer_rules import is_optional_entry
from proto.weights.sharded_files import open_weight_set, set_kind

SHAPE_TITLE = "The list of comparison results for shapes"
VALUE_TITLE = "The list of comparison results for values"
CKPT_SHAPE_FIELDS = ("Parameter name of original ckpt", "Parameter name of target ckpt", "Whether shape are equal",
                     "Parameter shape of original ckpt", "Parameter shape of target ckpt")
CKPT_VALUE_FIELDS = ("Parameter name of original ckpt", "Parameter name of target ckpt", "result of allclose",
                     "ratio of allclose", "cosine similarity", "mean & max diffs")
PTH_SHAPE_FIELDS = ("Parameter name of torch", "Parameter name of MindSpore", "Whether shape are equal",
                    "Parameter shape of torch", "Parameter shape of MindSpore")
PTH_VALUE_FIELDS = ("Parameter name of torch", "Parameter name of MindSpore", "result of allclose",
                    "ratio of allclose", "cosine similarity", "mean & max diffs")


@dataclass(frozen=True)
class ShapeRow:
    orig_name: str | None  # shown name (the torch name when a map is given)
    target_name: str | None
    shapes_equal: bool | None  # None: only one side has it
    orig_shape: tuple[int, ...] | None
    target_shape: tuple[int, ...] | None


@dataclass(frozen=True)
class WeightsComparison:
    """Shape rows and value comparisons of two weight files; ``bool()`` is whether they agree."""

    shape_rows: tuple[ShapeRow, ...]
    values: tuple[TensorComparison, ...]

    @property
    def passed(self) -> bool:
        """Matched shapes equal, values close, and no one-sided name beyond optional ones (num_batches_tracked)."""
        def fine(row: ShapeRow) -> bool:
            if row.shapes_equal is None:
                name = row.orig_name or row.target_name or ""
                return is_optional_entry(name)
            return row.shapes_equal

        return all(fine(r) for r in self.shape_rows) and all(self.values)

    def __bool__(self) -> bool:
        return self.passed


def _compare(orig_tensors, orig_shown, target, compare_value: bool, rtol, atol, equal_nan) -> WeightsComparison:
    target_specs = {s.name: s for s in target.specs()}
    seen: set[str] = set()
    shape_rows, values = [], []
    for tensor in orig_tensors:
        shown = orig_shown(tensor.name)
        spec = target_specs.get(tensor.name)
        if spec is None:
            shape_rows.append(ShapeRow(shown, None, None, tensor.shape, None))
            continue
        seen.add(tensor.name)
        shape_rows.append(ShapeRow(shown, tensor.name, tensor.shape == spec.shape, tensor.shape, spec.shape))
        if compare_value:
            result = metrics.compare_tensors(tensor, target.read(tensor.name), rtol, atol, equal_nan)
            values.append(dataclasses.replace(result, ref_name=shown or tensor.name))
    shape_rows += [ShapeRow(None, name, None, None, spec.shape) for name, spec in target_specs.items() if name not in seen]
    if not seen:
        raise MsparityError("no parameter names in common: nothing to compare (give a weight map?)")
    return WeightsComparison(tuple(shape_rows), tuple(values))


def _print(result: WeightsComparison, print_level: int, shape_fields, value_fields, title=VALUE_TITLE) -> None:
    if print_level:
        from coordinator.render import weight_report

        weight_report.print_weights_comparison(result, print_level, shape_fields, value_fields, title)


def compare_ms_ckpt(orig_file_path, target_file_path, **kwargs) -> WeightsComparison:
    """Compare two MindSpore checkpoints by parameter name (TroubleShooter's kwargs and tables)."""
    inverted = {}
    if kwargs.get("weight_map") or kwargs.get("weight_map_path"):
        inverted = {ms: pt for pt, ms in resolve_weight_map(kwargs.get("weight_map_path"), kwargs.get("weight_map")).pairs()}
    with open_weight_set(orig_file_path, layout_path=kwargs.get("orig_layout")) as orig, \
            open_weight_set(target_file_path, layout_path=kwargs.get("target_layout")) as target:
        result = _compare(orig, (lambda n: inverted.get(n)) if inverted else (lambda n: n), target,
                          kwargs.get("compare_value", True), kwargs.get("rtol", 1e-4), kwargs.get("atol", 1e-4),
                          kwargs.get("equal_nan", False))
    _print(result, kwargs.get("print_level", 1), kwargs.get("shape_field_names") or CKPT_SHAPE_FIELDS,
           kwargs.get("value_field_names") or CKPT_VALUE_FIELDS, kwargs.get("title", VALUE_TITLE))
    return result


def compare_pth_and_ckpt(weight_map_path, pt_file_path, ms_file_path, **kwargs) -> WeightsComparison:
    """Convert the .pth by the map (in memory, streamed) and compare it with the MindSpore .ckpt."""
    weight_map = resolve_weight_map(weight_map_path, kwargs.get("weight_map"))
    inverted = {ms: pt for pt, ms in weight_map.pairs()}
    rows: list = []
    with open_weight_set(pt_file_path, layout_path=kwargs.get("orig_layout")) as pth, \
            open_weight_set(ms_file_path, layout_path=kwargs.get("target_layout")) as target:
        check_keys(weight_map, pth.specs(), str(pt_file_path))
        result = _compare(convert_tensors(weight_map, pth, rows), inverted.get, target,
                          kwargs.get("compare_value", True), kwargs.get("rtol", 1e-4), kwargs.get("atol", 1e-4),
                          kwargs.get("equal_nan", False))
    if kwargs.get("print_conv_info", False):
        from coordinator.render import weight_report

        weight_report.print_conversion(rows)
    _print(result, kwargs.get("print_level", 1), PTH_SHAPE_FIELDS, PTH_VALUE_FIELDS)
    return result


def compare_weight_files(a, b, weight_map_path=None, **kwargs) -> WeightsComparison:
    """The CLI's compare-ckpt: a .pth is converted through the weight map first; other pairs match by name.
    Either side may be one file per rank (``r0.pth,r1.pth``) joined by ``orig_layout`` / ``target_layout``."""
    if set_kind(a) == "pth":
        if weight_map_path is None:
            raise MsparityError(f"comparing {a} with {b} needs --weight-map (make one with msparity weight-map)")
        return compare_pth_and_ckpt(weight_map_path, a, b, **kwargs)
    if set_kind(b) == "pth":
        raise MsparityError(f"put the torch file first: msparity compare-ckpt {Path(b).name} {Path(a).name} --weight-map ...")
    return compare_ms_ckpt(a, b, weight_map_path=weight_map_path, **kwargs)
