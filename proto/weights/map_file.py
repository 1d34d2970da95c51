"""Weight maps: TroubleShooter's ``[name_map, value_map]``, read and written without a framework.

A map comes from the layer rules (proto/weights/layer_rules.py), a JSON file, or a caller's tuple. Value
transforms are texts of a small declarative grammar (proto/weights/transforms.py); TroubleShooter's known dotted paths are
recognised on read, anything else is refused (a data file never names code to import).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from proto.errors import MsparityError
from proto.weights import transforms

MAX_LISTED = 12


def listed(items: list[str]) -> str:
    """Up to MAX_LISTED items, comma-separated, with a count of the rest."""
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


@dataclass(frozen=True)
class WeightMap:
    """pt name -> ms name for every torch entry, and pt name -> transform name where values change."""

    name_map: dict[str, str]
    value_map: dict[str, str]


def weight_map_from_pair(pair: object, source: str = "weight_map") -> WeightMap:
    """A WeightMap from ``[name_map, value_map]`` / ``(name_map, value_map)`` or a bare name_map dict."""
    if isinstance(pair, dict):
        name_map, value_map = pair, {}
    elif isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], dict):
        name_map, value_map = pair[0], pair[1] or {}
    else:
        raise MsparityError(f"{source}: expected [name_map, value_map] as written by get_weight_map")
    if not isinstance(value_map, dict):
        raise MsparityError(f"{source}: the value map (second item) must be an object")
    bad = [k for k, v in name_map.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise MsparityError(f"{source}: name map entries must be strings: {listed([str(b) for b in bad])}")
    unknown = [k for k in value_map if k not in name_map]
    if unknown:
        raise MsparityError(f"{source}: value map names entries the name map lacks: {listed(unknown)}")
    return WeightMap(dict(name_map), {k: transforms.from_map_file(v, k, source) for k, v in value_map.items()})


def load_weight_map(path: str | Path) -> WeightMap:
    """Read a map file written by msparity or TroubleShooter."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MsparityError(f"{path}: no such weight map file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MsparityError(f"{path}: not a JSON weight map ({exc})") from None
    return weight_map_from_pair(data, str(path))


def weight_map_json(weight_map: WeightMap) -> str:
    """The file form: one JSON line ``[name_map, value_map]``, as TroubleShooter writes it."""
    return json.dumps([weight_map.name_map, weight_map.value_map])
