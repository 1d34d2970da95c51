"""The coordinator (numpy only): TroubleShooter-compatible APIs that need no framework.

Names load lazily so ``import coordinator.cli`` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "convert_weight": "coordinator.convert",
    "compare_ms_ckpt": "coordinator.ckpt_compare",
    "compare_pth_and_ckpt": "coordinator.ckpt_compare",
    "compare_npy_dir": "coordinator.dir_api",
    "compare_grads_dir": "coordinator.dir_api",
    "compare_list_dir": "coordinator.dir_api",
    "compare_dict_dir": "coordinator.dir_api",
    "get_name_map_list_by_name": "coordinator.name_maps",
    "get_name_map_list_by_number": "coordinator.name_maps",
    "get_name_map_list_by_shape_edit_distance": "coordinator.name_maps",
    "compare_dirs": "coordinator.dir_compare",
    "NetDifferenceFinder": "coordinator.finder",
    "LocalDir": "coordinator.tensor_dirs",
    "RemoteDir": "coordinator.tensor_dirs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coordinator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
