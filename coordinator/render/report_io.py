"""The report schema and the JSON writing every command shares: NaN-safe values, atomic files."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from proto.formats.atomic import atomic_binary

REPORT_SCHEMA = "msparity.report/1"


def finite(value):
    """JSON has no NaN/inf: NaN -> null, +-inf -> "inf"/"-inf" (recursively through dicts and lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def description_dict(description) -> dict:
    """A WorkerDescription as JSON-ready data."""
    data = dataclasses.asdict(description)
    data["example_inputs"] = [{"name": s["name"], "dtype": s["dtype"], "shape": list(s["shape"])}
                              for s in data["example_inputs"]]
    return data


def write_atomic(path: Path, text: str) -> None:
    """Write text to path atomically (complete or not at all)."""
    with atomic_binary(path) as handle:
        handle.write(text.encode("utf-8"))


def write_json(path: Path, data: dict) -> None:
    """Write a report's JSON form atomically (NaN is refused: pass values through finite first)."""
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_reports(data: dict, json_path: Path | None = None, csv_path: Path | None = None,
                  html_path: Path | None = None) -> None:
    """Write what --json, --csv and --html asked for, each atomically, from the report's JSON form."""
    if json_path:
        write_json(json_path, data)
    if csv_path:
        from coordinator.render.csv_report import write_csv

        write_csv(csv_path, data)
    if html_path:
        from coordinator.render.html_report import page

        write_atomic(html_path, page(data))
