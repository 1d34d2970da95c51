"""Loading what a user trusts: a pickled whole model (or state dict) via full torch.load."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

PICKLE_SPEC_PREFIX = "pickle:"


class StateDictHolder(torch.nn.Module):
    """Serves a bare state dict as a module's state (names kept as they are, dots included)."""

    def __init__(self, state: dict):
        super().__init__()
        self._held = OrderedDict((str(k), v) for k, v in state.items() if isinstance(v, torch.Tensor))

    def state_dict(self, *args, keep_vars: bool = False, **kwargs):
        return OrderedDict((k, v if keep_vars else v.detach()) for k, v in self._held.items())

    def forward(self, *inputs):
        raise RuntimeError("this worker holds only weights loaded from a file; it has no forward")


def load_pickled(path: str | Path, trust_pickle: bool) -> torch.nn.Module:
    """torch.load(path, weights_only=False) — only when the caller says they trust the file."""
    if not trust_pickle:
        raise PermissionError(f"{path}: loading a pickle runs code from the file; pass --trust-pickle if you trust it")
    loaded = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(loaded, torch.nn.Module):
        return loaded
    if isinstance(loaded, dict):
        return StateDictHolder(loaded)
    raise TypeError(f"{path}: holds a {type(loaded).__name__}, not a torch module or state dict")
