"""The pt worker's model: built from a spec (proto/worker/model_spec.py) or, when the user trusts the
file, unpickled whole with full torch.load (``--model pickle:PATH --trust-pickle``)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from proto.worker.model_spec import ModelParts, build_parts
from pt_worker.adapter import TorchAdapter

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


def make_adapter(args) -> TorchAdapter:
    """The adapter serving the model the worker's command line names (--model, --device, --trust-pickle)."""
    if args.model.startswith(PICKLE_SPEC_PREFIX):
        parts = ModelParts(load_pickled(args.model[len(PICKLE_SPEC_PREFIX):], args.trust_pickle))
    else:
        parts = build_parts(args.model)
    adapter = TorchAdapter(parts.net, parts.example_inputs, model_spec=args.model, device=args.device, loss=parts.loss,
                           optimizer=parts.optimizer, use_input_values=parts.use_input_values)
    adapter.set_placements(parts.placements)
    adapter.set_activations(parts.activations)
    return adapter
