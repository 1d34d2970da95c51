"""The coordinator (numpy only): TroubleShooter-compatible APIs that need no framework.

Names load lazily so ``import coordinator.cli`` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "convert_weight": "coordinator.weights.convert",
    "compare_ms_ckpt": "coordinator.weights.ckpt_compare",
    "compare_pth_and_ckpt": "coordinator.weights.ckpt_compare",
    "compare_npy_dir": "coordinator.dirs.dir_api",
    "compare_grads_dir": "coordinator.dirs.dir_api",
    "compare_list_dir": "coordinator.dirs.dir_api",
    "compare_dict_dir": "coordinator.dirs.dir_api",
    "get_name_map_list_by_name": "coordinator.dirs.name_maps",
    "get_name_map_list_by_number": "coordinator.dirs.name_maps",
    "get_name_map_list_by_shape_edit_distance": "coordinator.dirs.name_maps",
    "compare_dirs": "coordinator.dirs.dir_compare",
    "NetDifferenceFinder": "coordinator.finder",
    "LocalDir": "coordinator.dirs.tensor_dirs",
    "RemoteDir": "coordinator.dirs.tensor_dirs",
    "MsparityError": "proto.errors",
    "UsageError": "proto.errors",
    "WorkerError": "proto.errors",
    "WeightMapError": "proto.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coordinator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
