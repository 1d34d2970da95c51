"""``ts.migrator``: TroubleShooter 1.0.18's migrator names, resolved lazily to where msparity keeps them.

| name | lives in |
|---|---|
| get_weight_map | pt_worker (torch) |
| convert_weight_and_load | ms_worker (mindspore) |
| save_net_and_weight_params, save | pt_worker or ms_worker, by the object passed |
| convert_weight, compare_*, get_name_map_list_by_*, NetDifferenceFinder | coordinator (no framework) |
"""

from __future__ import annotations

from msparity._dispatch import pin_save, resolve_save
from msparity._lazy import resolve

_COORDINATOR = (
    "convert_weight", "compare_ms_ckpt", "compare_pth_and_ckpt", "compare_npy_dir", "compare_grads_dir",
    "compare_list_dir", "compare_dict_dir", "get_name_map_list_by_name", "get_name_map_list_by_number",
    "get_name_map_list_by_shape_edit_distance", "NetDifferenceFinder",
)
_EXPORTS = {
    **{name: "coordinator" for name in _COORDINATOR},
    "get_weight_map": "pt_worker",
    "convert_weight_and_load": "ms_worker",
    "save_net_and_weight_params": "msparity._dispatch",
}

__all__ = sorted([*_EXPORTS, "save"])


def __getattr__(name: str):
    pin_save()
    if name == "save":  # like msparity.save
        return resolve_save()
    return resolve(__name__, name, _EXPORTS, prefix="migrator.")


def __dir__():
    pin_save()
    return sorted(set(globals()) | set(__all__))


pin_save()
