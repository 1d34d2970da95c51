"""Pick the torch or MindSpore implementation by the objects a caller passes.

Frameworks are looked up in ``sys.modules`` only: an object can only be a torch tensor if torch has
been imported, so nothing here imports a framework the caller has not.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import sys


def framework_of_tensor(value) -> str | None:
    """The framework ("torch" / "mindspore") whose tensor value is, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return "torch"
    ms = sys.modules.get("mindspore")
    if ms is not None and isinstance(value, ms.Tensor):
        return "mindspore"
    return None


def framework_of_net(net) -> str | None:
    """The framework of net: "torch" for a torch.nn.Module, "mindspore" for a mindspore.nn.Cell, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(net, torch.nn.Module):
        return "torch"
    ms = sys.modules.get("mindspore")
    if ms is not None and isinstance(net, ms.nn.Cell):
        return "mindspore"
    return None


def worker(framework: str):
    """The worker package serving framework ("torch" -> pt_worker, "mindspore" -> ms_worker)."""
    return importlib.import_module("pt_worker" if framework == "torch" else "ms_worker")


def first_leaf(data):
    """The first non-None leaf of a Tensor / list / tuple / dict tree, or None when it has none."""
    if isinstance(data, dict):
        data = list(data.values())
    if isinstance(data, (list, tuple)):
        for item in data:
            leaf = first_leaf(item)
            if leaf is not None:
                return leaf
        return None
    return data


def save(file, data, auto_id=True, suffix=None, *, output_mode="npy"):
    """Save a Tensor, or a list/tuple/dict of Tensors, as .npy files; torch or MindSpore by the first tensor.

    Names: ``{id}_{name}_{idx-or-key}_{suffix}.npy`` (pt_worker.save / ms_worker.save). Eager only:
    once mindspore is imported msparity hands out msparity._graph_save.save, which Graph mode compiles.
    """
    if output_mode != "npy":
        raise ValueError(f"save: only output_mode='npy' is supported, got {output_mode!r}")
    if isinstance(auto_id, str):
        raise TypeError(f"save: the third argument is auto_id (bool), got {auto_id!r}; pass suffix={auto_id!r}")
    leaf = first_leaf(data)
    framework = framework_of_tensor(leaf) if leaf is not None else _only_imported()
    if framework is None:
        got = "no tensor" if leaf is None else type(leaf).__name__
        raise TypeError(f"save: data must be a torch or mindspore Tensor, or a list/tuple/dict of them, got {got}")
    worker(framework).save(file, data, auto_id=auto_id, suffix=suffix)


def _only_imported() -> str | None:
    """The framework to use for data without tensors: torch if imported, else mindspore if imported."""
    for framework in ("torch", "mindspore"):
        if framework in sys.modules:
            return framework
    return None


def resolve_save():
    """The save to hand out: the Graph-mode-capable one once mindspore is imported, else the eager dispatcher."""
    if "mindspore" in sys.modules:
        return importlib.import_module("msparity._graph_save").save
    return save


def pin_save() -> None:
    """Once mindspore is imported, make ``save`` a real attribute of msparity and msparity.migrator.

    MindSpore's graph compiler reads a module's ``__dict__`` and never calls its ``__getattr__``, so a
    compiled ``construct`` finds ``ts.save`` only after this has run (at import, on any access).
    """
    if "mindspore" not in sys.modules:
        return
    for name in ("msparity", "msparity.migrator"):
        module = sys.modules.get(name)
        if module is not None and "save" not in vars(module):
            module.save = resolve_save()


def fix_random(seed=16):
    """Seed Python, numpy and every installed framework (torch, mindspore), like TroubleShooter."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    importlib.import_module("numpy").random.seed(seed)
    for framework in ("torch", "mindspore"):
        if framework in sys.modules or importlib.util.find_spec(framework) is not None:
            worker(framework).fix_random(seed)
    pin_save()


def save_net_and_weight_params(net, path=None, weight_params_filename=None):
    """Write net's architecture and weights: pt_worker's for a torch.nn.Module, ms_worker's for a mindspore.nn.Cell."""
    framework = framework_of_net(net)
    if framework is None:
        raise ValueError(f"save_net_and_weight_params: net must be a torch.nn.Module or a mindspore.nn.Cell, "
                         f"got {type(net).__name__}")
    worker(framework).save_net_and_weight_params(net, path=path, weight_params_filename=weight_params_filename)
