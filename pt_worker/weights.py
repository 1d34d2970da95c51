"""get_weight_map: walk a torch net and write TroubleShooter's ``[name_map, value_map]``."""

from __future__ import annotations

import logging
import pprint
from pathlib import Path

import torch

from proto.formats.atomic import atomic_binary
from proto.weights import layer_rules
from proto.weights.map_file import WeightMap, weight_map_json
from pt_worker.adapter import TorchAdapter

log = logging.getLogger("msparity")


def get_weight_map(pt_net=None, weight_map_save_path=None, weight_name_prefix=None, custom_name_func=None,
                   print_map=False, **kwargs):
    """Map every state_dict key of pt_net to its MindSpore name by the layer rules.

    Returns ``(name_map, value_map)``; value_map names transforms (Conv1d weight: "expand_dims_axis2").
    ``weight_name_prefix`` goes before every MindSpore name; ``custom_name_func(name_map)`` returns
    the final name_map. With ``weight_map_save_path`` the pair is written as one JSON list.
    ``pt_model=`` is accepted as the deprecated alias of ``pt_net``.
    """
    if kwargs.get("pt_model") is not None:
        log.warning("[*User Warning*] 'pt_model' is deprecated; use 'pt_net'")
        pt_net = kwargs["pt_model"]
    if not isinstance(pt_net, torch.nn.Module):
        raise TypeError("The parameter 'pt_net' must be torch.nn.Module")
    if custom_name_func and not callable(custom_name_func):
        raise TypeError("The parameter 'custom_name_func' must be a function")
    if weight_name_prefix and not isinstance(weight_name_prefix, str):
        raise TypeError("The parameter 'weight_name_prefix' must be <class 'str'>")
    if weight_map_save_path is not None and not Path(weight_map_save_path).resolve().parent.is_dir():
        raise ValueError(f"The parameter 'weight_map_save_path' error: the folder of {weight_map_save_path} "
                         "does not exist; create it first")
    listing = TorchAdapter(pt_net).list_parameters()
    name_map, value_map = layer_rules.weight_map_from_listing(listing, weight_name_prefix or None)
    if custom_name_func:
        name_map = custom_name_func(name_map)
        if not isinstance(name_map, dict):
            raise TypeError("'custom_name_func' must return the name map dict")
    if print_map:
        pprint.pprint(name_map)
        pprint.pprint(value_map)
    if weight_map_save_path is not None:
        with atomic_binary(weight_map_save_path) as handle:
            handle.write(weight_map_json(WeightMap(name_map, value_map)).encode("utf-8"))
    return name_map, value_map
