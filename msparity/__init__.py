"""A TroubleShooter-shaped namespace: ``import msparity as ts`` runs a TroubleShooter 1.0.18 script.

``ts.migrator``, ``ts.widget``, ``ts.save`` and ``ts.fix_random`` resolve lazily to pt_worker,
ms_worker and coordinator, so importing msparity imports neither torch nor mindspore. A
TroubleShooter name msparity leaves out raises AttributeError saying what to use instead
(docs/troubleshooter-port.md).
"""

from __future__ import annotations

import importlib

from msparity._dispatch import pin_save, resolve_save
from msparity._lazy import resolve

_SUBMODULES = ("migrator", "widget")
_EXPORTS = {"fix_random": "msparity._dispatch"}

__all__ = ["__version__", "fix_random", "migrator", "save", "widget"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("msparity")
    except PackageNotFoundError:
        return "0.1.0"


def __getattr__(name: str):
    pin_save()
    if name in _SUBMODULES:
        return importlib.import_module(f"msparity.{name}")
    if name == "save":  # mindspore not imported yet: the eager dispatcher (torch tensors)
        return resolve_save()
    if name == "__version__":
        return _version()
    return resolve(__name__, name, _EXPORTS)


def __dir__():
    pin_save()
    return sorted(set(globals()) | set(__all__))


pin_save()  # mindspore imported before msparity: ``save`` becomes a real attribute (Graph mode)
