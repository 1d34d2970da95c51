"""TroubleShooter's ``save`` and ``get_pt_grads`` for torch (naming rules: proto/formats/save_names.py)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from proto.formats.npy_files import save_npy
from proto.formats.save_names import COUNTER, leaf_names, npy_path


def _flatten(data, keypath: tuple = ()) -> list[tuple[tuple, torch.Tensor]]:
    if data is None:
        return []
    if isinstance(data, (list, tuple)):
        return [leaf for i, item in enumerate(data) for leaf in _flatten(item, (*keypath, i))]
    if isinstance(data, dict):
        return [leaf for key, item in data.items() for leaf in _flatten(item, (*keypath, key))]
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"save: data must be a torch.Tensor or a list/tuple/dict of them, got {type(data).__name__}"
                        + (f" at {'.'.join(map(str, keypath))}" if keypath else ""))
    return [(keypath, data)]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds every bf16 value exactly
        tensor = tensor.float()
    return tensor.numpy()


def save(file, data, auto_id: bool = True, suffix: str | None = None) -> None:
    """Save a Tensor, or a list/tuple/dict of Tensors, as .npy files named ``{id}_{name}_{idx-or-key}_{suffix}``."""
    leaves = _flatten(data)
    directory, stems = leaf_names(file, suffix, [k for k, _ in leaves], [tuple(t.shape) for _, t in leaves])
    save_id = COUNTER.take() if auto_id else None
    for stem, (_, tensor) in zip(stems, leaves):
        save_npy(npy_path(directory, stem, save_id), _numpy(tensor))


def get_pt_grads(net: torch.nn.Module) -> OrderedDict:
    """Every parameter's gradient as ``{f"{name}_{index}": grad}``, in parameter order (None where no grad)."""
    return OrderedDict((f"{name}_{i}", p.grad) for i, (name, p) in enumerate(net.named_parameters()))
