"""save_net_and_weight_params for torch: the weights, the weight map and the printed architecture."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from proto.formats.atomic import atomic_binary
from pt_worker.weight_map import get_weight_map

WEIGHTS_FILE = "torch_troubleshooter_create.pth"
MAP_FILE = "torch_net_map.json"
ARCHITECTURE_FILE = "torch_net_architecture.txt"


def save_net_and_weight_params(net, path=None, weight_params_filename=None) -> None:
    """Write net.state_dict() (.pth), its weight map and ``str(net)`` into path (default: cwd)."""
    if not isinstance(net, torch.nn.Module):
        raise ValueError("For the 'save_net_and_weight_params', the type of the 'net' parameter must be "
                         "'torch.nn.Module' here (use ms_worker's for a mindspore Cell)")
    folder = Path(path if path is not None else os.getcwd())
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_binary(folder / (weight_params_filename or WEIGHTS_FILE)) as handle:
        torch.save(net.state_dict(), handle)
    get_weight_map(net, weight_map_save_path=folder / MAP_FILE)
    with atomic_binary(folder / ARCHITECTURE_FILE) as handle:
        handle.write((str(net) + "\n").encode("utf-8"))
