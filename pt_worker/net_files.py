"""save_net_and_weight_params for torch: the weights, the weight map and the printed architecture."""

from __future__ import annotations

import torch

from proto.formats.atomic import atomic_binary
from proto.formats.net_folder import output_folder, require_net, write_architecture
from pt_worker.weights import get_weight_map

WEIGHTS_FILE = "torch_troubleshooter_create.pth"
MAP_FILE = "torch_net_map.json"
ARCHITECTURE_FILE = "torch_net_architecture.txt"


def save_net_and_weight_params(net, path=None, weight_params_filename=None) -> None:
    """Write net.state_dict() (.pth), its weight map and ``str(net)`` into path (default: cwd)."""
    require_net(net, torch.nn.Module, "torch.nn.Module", "ms_worker's for a mindspore Cell")
    folder = output_folder(path)
    with atomic_binary(folder / (weight_params_filename or WEIGHTS_FILE)) as handle:
        torch.save(net.state_dict(), handle)
    get_weight_map(net, weight_map_save_path=folder / MAP_FILE)
    write_architecture(folder / ARCHITECTURE_FILE, net)
