"""A run's main table as CSV, from its JSON form: compare's outputs, locate's per-module curve, train-step's
tensors per step (the dir compares have their own TroubleShooter-shaped CSV in dir_report)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from coordinator.render.report_io import write_atomic

COLUMNS = {
    "compare": ("ref_name", "cand_name", "ref_shape", "ref_dtype", "passed", "allclose_ratio", "cosine_similarity",
                "max_abs_diff", "mean_abs_diff", "max_rel_diff", "rtol", "atol"),
    "locate": ("pt", "ms", "call", "type", "ms_type", "error", "floor", "ratio", "inputs_match", "diverges", "signal",
               "aligned_by", "note"),
    "train-step": ("step", "kind", "pt", "ms", "module_type", "passed", "error_vs_float64", "floor", "noise_ratio",
                   "explained", "note"),
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
    raise ValueError(f"no CSV table for a {kind!r} report")


def write_csv(path: Path, data: dict) -> None:
    """Write the report's main table as CSV (every field quoted), atomically."""
    columns, rows = table_rows(data)
    text = io.StringIO()
    writer = csv.writer(text, dialect="unix", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    write_atomic(Path(path), text.getvalue())
