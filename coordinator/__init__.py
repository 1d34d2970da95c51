"""The coordinator (numpy only): TroubleShooter-compatible APIs that need no framework.

Names load lazily so ``import coordinator.cli`` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "convert_weight": "coordinator.convert",
    "compare_ms_ckpt": "coordinator.ckpt_compare",
    "compare_pth_and_ckpt": "coordinator.ckpt_compare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coordinator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
