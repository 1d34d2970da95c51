"""PyTorch -> MindSpore parameter rules, as data (verified in ../shared/LAYER_FACTS.md section 1).

Keyed by the torch module type that owns the parameter. A layer type absent here keeps its
parameter names and values (Linear, Conv2d/3d, ConvTranspose2d, LSTM, GRU, MultiheadAttention,
bare Parameters). Value transforms are names from the closed set in TRANSFORMS.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "expand_dims_axis2": lambda a: np.expand_dims(a, 2),
}

SHAPE_TRANSFORMS: dict[str, Callable[[tuple[int, ...]], tuple[int, ...]]] = {
    "identity": lambda s: tuple(s),
    "expand_dims_axis2": lambda s: tuple(s[:2]) + (1,) + tuple(s[2:]),
}
