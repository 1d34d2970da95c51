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
    """pt name -> ms name for every torch entry, and pt name -> transform name where values change.

    Beyond TroubleShooter's one-to-one maps: a torch entry split into several MindSpore tensors maps to
    the list of their names (with a ``split`` transform); several torch entries joined into one name the
    same MindSpore tensor, each with a ``concat`` transform, in the order they are joined.
    """

    name_map: dict[str, str | list[str]]
    value_map: dict[str, str]

    def targets(self, pt_name: str) -> tuple[str, ...]:
        """The MindSpore name(s) a torch entry feeds (none when the map lacks it)."""
        value = self.name_map.get(pt_name)
        return () if value is None else tuple(value) if isinstance(value, list) else (value,)

    def pairs(self) -> list[tuple[str, str]]:
        """Every (torch name, MindSpore name) the map relates, a split entry once per part."""
        return [(pt, ms) for pt in self.name_map for ms in self.targets(pt)]

    def concat_groups(self) -> dict[str, list[str]]:
        """MindSpore name -> the torch entries joined into it, in the map's order."""
        groups: dict[str, list[str]] = {}
        for pt, ms in self.pairs():
            join = transforms.join_of(self.value_map.get(pt, "identity"))[1]
            if join is not None and join.op == "concat":
                groups.setdefault(ms, []).append(pt)
        return groups


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
    bad = [k for k, v in name_map.items() if not isinstance(k, str) or not _names(v)]
    if bad:
        raise MsparityError(f"{source}: name map entries must be strings (or, for a split, lists of strings): "
                            f"{listed([str(b) for b in bad])}")
    unknown = [k for k in value_map if k not in name_map]
    if unknown:
        raise MsparityError(f"{source}: value map names entries the name map lacks: {listed(unknown)}")
    weight_map = WeightMap(dict(name_map), {k: transforms.from_map_file(v, k, source) for k, v in value_map.items()})
    _check_joins(weight_map, source)
    return weight_map


def _names(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value))


def _check_joins(weight_map: WeightMap, source: str) -> None:
    """A list of targets needs a split; a concat needs one target; a target shared by torch entries needs concat."""
    for pt, value in weight_map.name_map.items():
        join = transforms.join_of(weight_map.value_map.get(pt, "identity"))[1]
        if isinstance(value, list) and (join is None or join.op != "split"):
            raise MsparityError(f"{source}: {pt!r} maps to {len(value)} MindSpore names: give it a split "
                                "transform in the value map, e.g. split(0)")
        if join is not None and join.op == "split" and not isinstance(value, list):
            raise MsparityError(f"{source}: {pt!r} has a split transform: map it to the list of MindSpore names")


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
