"""PyTorch -> MindSpore parameter rules, as data (verified in ../shared/LAYER_FACTS.md section 1).

Keyed by the torch module type that owns the parameter. A layer type absent here keeps its
parameter names and values (Linear, Conv2d/3d, ConvTranspose2d, LSTM, GRU, MultiheadAttention,
bare Parameters). Value transforms are texts of the grammar in proto/weights/transforms.py; map
files name them, never import them. Shared by pt_worker.get_weight_map and the coordinator's weight plans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the listing types only: weights need no worker runtime
    from proto.worker.interface import ParameterListing, ParameterSpec


DROP = None  # the parameter has no MindSpore counterpart

_BATCH_NORM = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
    "num_batches_tracked": DROP,
}
_AFFINE_NORM = {"weight": "gamma", "bias": "beta"}

# torch module type -> {torch local name: MindSpore local name, or DROP}
PARAM_RENAMES: dict[str, dict[str, str | None]] = {
    "BatchNorm1d": _BATCH_NORM,
    "BatchNorm2d": _BATCH_NORM,
    "SyncBatchNorm": _BATCH_NORM,
    "BatchNorm3d": {k: (v and f"bn2d.{v}") for k, v in _BATCH_NORM.items()},  # MS nests a BatchNorm2d
    "LayerNorm": _AFFINE_NORM,
    "GroupNorm": _AFFINE_NORM,
    "InstanceNorm1d": _BATCH_NORM,
    "InstanceNorm2d": _BATCH_NORM,
    "InstanceNorm3d": _BATCH_NORM,
    "Embedding": {"weight": "embedding_table"},
    "PReLU": {"weight": "w"},
}

# torch container type -> {torch child attribute: MindSpore child attribute}
CHILD_RENAMES: dict[str, dict[str, str]] = {
    "TransformerEncoderLayer": {"linear1": "dense1", "linear2": "dense2"},
}

# (torch module type, torch local name) -> transform name
VALUE_TRANSFORMS: dict[tuple[str, str], str] = {
    ("Conv1d", "weight"): "expand_dims_axis2",  # (out, in/g, k) -> (out, in/g, 1, k)
}

# Torch state entries MindSpore has no place for: kept in map files (TroubleShooter does), and
# skipped when the target net lacks them.
OPTIONAL_LOCAL_NAMES = frozenset({"num_batches_tracked"})


def is_optional_entry(name: str) -> bool:
    """Whether a state entry is one MindSpore nets have no place for (BatchNorm's num_batches_tracked)."""
    return name.rpartition(".")[2] in OPTIONAL_LOCAL_NAMES

def ms_module_path(pt_path: str, module_types: dict[str, str]) -> str:
    """Rename child attributes of containers whose MindSpore port names them differently."""
    parts = pt_path.split(".") if pt_path else []
    renamed = []
    for index, part in enumerate(parts):
        parent_type = module_types.get(".".join(parts[:index]), "")
        renamed.append(CHILD_RENAMES.get(parent_type, {}).get(part, part))
    return ".".join(renamed)


def ms_name_from_pt(param: ParameterSpec, module_types: dict[str, str]) -> tuple[str, str]:
    """(MindSpore name, transform) of one torch state entry by the layer rules.

    Entries the rules DROP keep their own name (a map covers every torch key); the plan decides
    whether the target net has a place for them.
    """
    local = param.local_name
    layer = param.module_rule_type or param.module_type
    ms_local = PARAM_RENAMES.get(layer, {}).get(local, local)
    if ms_local is DROP:
        ms_local = local
    path = ms_module_path(param.module_path, module_types)
    transform = VALUE_TRANSFORMS.get((layer, local), "identity")
    return (f"{path}.{ms_local}" if path else ms_local), transform


def weight_map_from_listing(listing: ParameterListing, prefix: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(name_map, value_map) for every torch state entry, in state order; prefix goes before every ms name."""
    module_types = {m.path: m.rule_type or m.type for m in listing.modules}
    name_map: dict[str, str] = {}
    value_map: dict[str, str] = {}
    for param in listing.parameters:
        ms_name, transform = ms_name_from_pt(param, module_types)
        name_map[param.name] = f"{prefix}.{ms_name}" if prefix else ms_name
        if transform != "identity":
            value_map[param.name] = transform
    return name_map, value_map
