"""The ``save`` msparity hands out once mindspore is imported: MindSpore Graph mode can compile it.

Imported only when mindspore is already in ``sys.modules``. A Graph-mode ``construct`` resolves
``ts.save`` from the module's dict (not through module ``__getattr__``) and compiles this function:
every name in it resolves to a plain object, ``isinstance`` on the data folds to a constant, and
the mindspore branch is ``ms_worker.save``, which writes .npy files from a compiled graph on CPU.
Called eagerly, torch (or any non-mindspore) data goes to the eager dispatcher.
"""

from __future__ import annotations

import sys

import ms_worker
from msparity import _dispatch

_MS_SAVE = ms_worker.save
_MS_TENSOR = sys.modules["mindspore"].Tensor
_EAGER_SAVE = _dispatch.save


def _has_ms_tensor(data):
    """Whether data (a Tensor or a list/tuple/dict tree of them) holds a mindspore Tensor."""
    if isinstance(data, (list, tuple)):
        found = False
        for item in data:
            found = found or _has_ms_tensor(item)
        return found
    if isinstance(data, dict):
        found = False
        for key in data:
            found = found or _has_ms_tensor(data[key])
        return found
    return isinstance(data, _MS_TENSOR)


def save(file, data, auto_id=True, suffix=None, output_mode="npy"):
    """Save a Tensor, or a list/tuple/dict of Tensors, as .npy files (ms_worker.save or pt_worker.save).

    Also inside a MindSpore Graph-mode ``construct``. Names: ``{id}_{name}_{idx-or-key}_{suffix}.npy``.
    """
    if output_mode == "npy" and not isinstance(auto_id, str) and _has_ms_tensor(data):
        _MS_SAVE(file, data, auto_id, suffix)
    else:
        _EAGER_SAVE(file, data, auto_id, suffix, output_mode=output_mode)
