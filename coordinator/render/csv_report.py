"""A run's main table as CSV, from its JSON form: compare's outputs, locate's per-module curve, train-step's
tensors per step, compare-ckpt's parameters, convert's and weight-map's tensors (the dir compares have their
own TroubleShooter-shaped CSV in dir_report)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from coordinator.render.report_io import write_atomic

COLUMNS = {
    "compare": ("ref_name", "cand_name", "ref_shape", "ref_dtype", "passed", "allclose_ratio", "cosine_similarity",
                "max_abs_diff", "mean_abs_diff", "max_rel_diff", "rtol", "atol"),
    "locate": ("pt", "ms", "call", "type", "ms_type", "error", "floor", "ratio", "inputs_match", "diverges", "signal",
               "aligned_by", "note"),
    "train-step": ("step", "kind", "pt", "ms", "module_type", "passed", "error_vs_float64", "floor", "noise_ratio",
                   "explained", "note"),
    "compare-ckpt": ("ref_name", "cand_name", "ref_shape", "cand_shape", "passed", "allclose_ratio",
                     "cosine_similarity", "max_abs_diff", "mean_abs_diff", "max_rel_diff", "note"),
    "convert": ("pt_name", "ms_name", "status", "pt_shape", "ms_shape"),
    "weight-map": ("pt", "ms", "transform", "found_by", "shape", "dtype", "module_type"),
}


def table_rows(data: dict) -> tuple[tuple[str, ...], list[dict]]:
    """(columns, rows) of a report's main table."""
    kind = data.get("kind")
    if kind == "compare":
        return COLUMNS[kind], list(data.get("outputs") or [])
    if kind == "locate":
        return COLUMNS[kind], list(data.get("curve") or [])
    if kind == "train-step":
        return COLUMNS[kind], [{"step": s["step"], **t} for s in data.get("steps") or [] for t in s["tensors"]]
    if kind == "compare-ckpt":
        values = list(data.get("values") or [])
        compared = {v.get("ref_name") for v in values}
        odd = [{"ref_name": r.get("orig_name"), "cand_name": r.get("target_name"), "ref_shape": r.get("orig_shape"),
                "cand_shape": r.get("target_shape"), "passed": False,
                "note": "in one file only" if r.get("shapes_equal") is None else "shapes differ"}
               for r in data.get("shapes") or [] if r.get("shapes_equal") is not True and r.get("orig_name") not in compared]
        return COLUMNS[kind], values + odd
    if kind in ("convert", "weight-map"):
        return COLUMNS[kind], list(data.get("tensors") or [])
    raise ValueError(f"no CSV table for a {kind!r} report")


def _cell(value):
    """Empty for null; a shape or a list of names as JSON ([8, 4]); anything else as it is."""
    if value is None:
        return ""
    return json.dumps(list(value)) if isinstance(value, (list, tuple)) else value


def write_csv(path: Path, data: dict) -> None:
    """Write the report's main table as CSV (every field quoted), atomically."""
    columns, rows = table_rows(data)
    text = io.StringIO()
    writer = csv.writer(text, dialect="unix", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_atomic(Path(path), text.getvalue())
