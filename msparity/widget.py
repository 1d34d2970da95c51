"""``ts.widget``: TroubleShooter 1.0.18's widget names that msparity provides, resolved lazily.

fix_random seeds Python, numpy and every installed framework; get_pt_grads lives in pt_worker.
"""

from __future__ import annotations

from msparity._lazy import resolve

_EXPORTS = {"fix_random": "msparity._dispatch", "get_pt_grads": "pt_worker"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    return resolve(__name__, name, _EXPORTS, prefix="widget.")


def __dir__():
    return sorted(set(globals()) | set(__all__))
