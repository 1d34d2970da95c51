"""save_net_and_weight_params for mindspore: the checkpoint and the printed architecture."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mindspore as ms

from proto.formats.net_folder import output_folder, require_net, write_architecture

WEIGHTS_FILE = "mindspore_troubleshooter_create.ckpt"
ARCHITECTURE_FILE = "mindspore_net_architecture.txt"


def save_net_and_weight_params(net, path=None, weight_params_filename=None) -> None:
    """Write the net's checkpoint and ``str(net)`` into path (default: cwd)."""
    require_net(net, ms.nn.Cell, "mindspore.nn.Cell", "pt_worker's for a torch Module")
    folder = output_folder(path)
    target = folder / (weight_params_filename or WEIGHTS_FILE)
    # save_checkpoint writes in place; write beside the target and rename so no partial file is left
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".ckpt", dir=folder)
    os.close(fd)
    try:
        ms.save_checkpoint(net, tmp)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_architecture(folder / ARCHITECTURE_FILE, net)
